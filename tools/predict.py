"""Pre-label images with a trained checkpoint, in the super-taxonomy or in a customer's labels.

    python tools/predict.py --checkpoint CKPT (--images DIR | --image-list FILE | GLOB ...)
        [--customer NAME [--categories JSON]] [--score-threshold X] [--thresholds YAML]
        [--out OUT.json] [--format coco|results] [--draw DIR] [--batch-size N]
        [--device D] [--workers N] [--no-ema] [--[no-]hierarchy-decoding]
        [--taxonomies PATH ...]

Image sizes are read from the files (EXIF orientation applied, like training); unreadable
images are skipped with a counted warning. Boxes are in original pixels. ``coco`` writes a
full COCO file (images, the taxonomy's categories, detections as annotations with a
``score``) that CVAT and Label Studio import and ``evaluate.py --predictions`` scores;
``results`` writes a COCO results list. Exit 0 success, 1 bad input, 2 usage error.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

import taxdet.supertax as supertax
from taxdet.core.files import check_outputs, taxonomy_inputs, write_atomic
from taxdet.detection.prediction.customer_labels import LabelSpace, customer_labels, super_labels
from taxdet.detection.prediction.image_inputs import ImageSet, find_images, read_images
from taxdet.detection.prediction.thresholds_file import (
    Thresholds,
    apply_thresholds,
    read_thresholds,
)

MAX_LISTED = 20  # skipped images named in the warning


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="predict.py", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, required=True, metavar="CKPT",
                   help="training checkpoint (its model, weights and taxonomies)")
    src = p.add_argument_group("images (exactly one source)")
    src.add_argument("patterns", nargs="*", metavar="GLOB", help="image files or glob patterns "
                     "(quoted; ** is recursive); file_name as matched")
    src.add_argument("--images", type=Path, metavar="DIR", help="every image under DIR, "
                     "recursively; file_name relative to DIR")
    src.add_argument("--image-list", type=Path, metavar="FILE", help="text file of image "
                     "paths, one a line (# comments); relative to the file's folder")
    out = p.add_argument_group("labels and output")
    out.add_argument("--customer", metavar="NAME", help="write that customer's labels and "
                     "category ids (default: the super-taxonomy's classes, id = column + 1)")
    out.add_argument("--categories", type=Path, metavar="JSON", help="with --customer: a COCO "
                     "file of that customer whose categories give the ids by name (default: "
                     "its annotation file from --taxonomies, else 1..L in label order)")
    out.add_argument("--taxonomies", nargs="+", metavar="PATH", help="taxonomy YAMLs hashing "
                     "like the checkpoint's (default: the checkpoint's own)")
    out.add_argument("--score-threshold", type=float, default=0.3, metavar="X",
                     help="lowest score kept, for classes --thresholds does not list "
                     "(default: %(default)s)")
    out.add_argument("--thresholds", type=Path, metavar="YAML", help="per-class thresholds, "
                     "e.g. from evaluate.py --fit-thresholds (default: none)")
    out.add_argument("--out", type=Path, default=Path("predictions.json"), metavar="OUT",
                     help="output JSON (default: %(default)s)")
    out.add_argument("--format", choices=("coco", "results"), default="coco",
                     help="coco: full COCO file with scored annotations; results: COCO results "
                     "list (default: %(default)s)")
    out.add_argument("--draw", type=Path, metavar="DIR", help="also write each image with its "
                     "detections drawn, as DIR/<file_name>.png (default: no drawings)")
    run = p.add_argument_group("running")
    run.add_argument("--batch-size", type=int, default=8, metavar="N",
                     help="images per forward pass (default: %(default)s)")
    run.add_argument("--device", default="auto",
                     help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    run.add_argument("--workers", type=int, default=2, metavar="N",
                     help="image-loading processes and size-reading threads (default: "
                     "%(default)s)")
    run.add_argument("--no-ema", action="store_true",
                     help="use the raw weights, not the EMA's (default: EMA when saved)")
    run.add_argument("--hierarchy-decoding", action=argparse.BooleanOptionalAction,
                     default=None, help="score each parent class as the max over its "
                     "descendants before NMS (a child's detection is also its ancestors'; "
                     "default: on when the super-taxonomy has any parent)")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    given = [f for f, v in (("--images", args.images), ("--image-list", args.image_list),
                            ("GLOB", args.patterns)) if v]
    if len(given) != 1:
        p.error("give exactly one image source: --images DIR, --image-list FILE or GLOB ..."
                + (f" (got {', '.join(given)})" if given else ""))
    if args.categories and not args.customer:
        p.error("--categories needs --customer")
    if not 0 <= args.score_threshold <= 1:
        p.error(f"--score-threshold {args.score_threshold}: expected a value in [0, 1]")
    if args.batch_size < 1 or args.workers < 0:
        p.error("--batch-size must be >= 1 and --workers >= 0")
    return args


def label_space(args: argparse.Namespace, taxset: supertax.TaxonomySet) -> LabelSpace:
    if args.customer is None:
        return super_labels(taxset)
    return customer_labels(taxset, args.customer, args.categories)


def check_thresholds(thresholds: Thresholds | None, space: LabelSpace, path: Path) -> None:
    if thresholds is not None:
        thresholds.check_names(list(space.names.values()), space.taxonomy, str(path))


def warn_skipped(images: ImageSet, total: int) -> None:
    if images.skipped:
        listed = "\n  ".join(images.skipped[:MAX_LISTED])
        more = len(images.skipped) - MAX_LISTED
        print(f"warning: {len(images.skipped)} of {total} images skipped (unreadable):\n  "
              f"{listed}" + (f"\n  ... and {more} more" if more > 0 else ""), file=sys.stderr)


def write_output(args: argparse.Namespace, images: ImageSet, results: list[dict],
                 space: LabelSpace) -> None:
    if args.format == "results":
        data = results
    else:
        from taxdet.detection.prediction.prelabels import coco_prelabels
        data = coco_prelabels(images.images, results, space, info={
            "checkpoint": str(args.checkpoint), "score_threshold": args.score_threshold,
            "thresholds": str(args.thresholds) if args.thresholds else None})
    write_atomic(args.out, json.dumps(data) + "\n")


def summary(images: ImageSet, results: list[dict], space: LabelSpace, out: Path) -> str:
    per = Counter(r["category_id"] for r in results)
    lines = [f"wrote {out}: {len(results)} detections on {len(images.images)} images, in "
             f"{space.taxonomy!r}"]
    lines += [f"  {name:<20} {per[cat]:>6}" for cat, name in sorted(space.names.items())
              if name not in space.not_predicted]
    if space.not_predicted:
        lines.append(f"not predicted (maps_to: null): {', '.join(space.not_predicted)}")
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from taxdet.detection.prediction.drawing import drawing_path, save_drawings
    from taxdet.detection.prediction.predictor import load_predictor, predict_images
    taxset = supertax.load(args.taxonomies) if args.taxonomies else None
    names, base = find_images(args.images, args.image_list, args.patterns)
    files = [Path(n) if base is None else base / n for n in names]
    outputs = {"--out": args.out}
    if args.draw:
        outputs.update({f"--draw ({n})": drawing_path(args.draw, n) for n in names})
    inputs = [args.checkpoint, args.categories, args.thresholds, *files]
    check_outputs(outputs, [p for p in inputs if p] + (taxonomy_inputs(taxset) if taxset else []))
    thresholds = read_thresholds(args.thresholds) if args.thresholds else None
    predictor, taxset, cfg = load_predictor(args.checkpoint, use_ema=not args.no_ema,
                                            device=args.device, taxset=taxset,
                                            hierarchy_decoding=args.hierarchy_decoding)
    space = label_space(args, taxset)
    check_thresholds(thresholds, space, args.thresholds)
    images = read_images(names, base, workers=max(1, args.workers))
    warn_skipped(images, len(names))
    coco = {"images": images.images, "annotations": [], "categories": []}
    raw = predict_images(predictor, coco, images.base, taxset=taxset,
                         image_size=cfg.model.image_size, batch_size=args.batch_size,
                         workers=args.workers)
    results = apply_thresholds(space.relabel(raw), space.names, thresholds, args.score_threshold)
    write_output(args, images, results, space)
    print(summary(images, results, space, args.out))
    if args.draw:
        paths = save_drawings(results, images.images, images.base, space.names, args.draw)
        print(f"wrote {len(paths)} drawings under {args.draw}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return supertax.run_cli(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
