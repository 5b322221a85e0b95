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
import sys
from pathlib import Path

from taxdet.core.errors import run_cli
from taxdet.tools import cli_flags as flags


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="predict.py", description=__doc__.split("\n")[0])
    flags.add_checkpoint(p, "its model, weights and taxonomies", required=True)
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
    flags.add_taxonomies(out, "hashing like the checkpoint's (default: the checkpoint's own)")
    out.add_argument("--score-threshold", type=float, default=0.3, metavar="X",
                     help="lowest score kept, for classes --thresholds does not list "
                     "(default: %(default)s)")
    out.add_argument("--thresholds", type=Path, metavar="YAML", help="per-class thresholds, "
                     "e.g. from evaluate.py --fit-thresholds (default: none)")
    flags.add_out(out, "the pre-labels (JSON)", default=Path("predictions.json"))
    out.add_argument("--format", choices=("coco", "results"), default="coco",
                     help="coco: full COCO file with scored annotations; results: COCO results "
                     "list (default: %(default)s)")
    flags.add_draw(out, "each image with its detections drawn, as <file_name>.png,",
                   default="no drawings")
    run = p.add_argument_group("running")
    run.add_argument("--batch-size", type=int, default=8, metavar="N",
                     help="images per forward pass (default: %(default)s)")
    flags.add_device(run)
    flags.add_workers(run, "image-loading processes and size-reading threads")
    flags.add_no_ema(run)
    flags.add_hierarchy_decoding(run)
    flags.verbosity(p)
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


def options(args: argparse.Namespace):
    """The library's ``PredictOptions`` from the parsed flags."""
    from taxdet.detection.prediction.prelabel_run import PredictOptions
    return PredictOptions(
        checkpoint=args.checkpoint, images=args.images, image_list=args.image_list,
        patterns=tuple(args.patterns), customer=args.customer, categories=args.categories,
        taxonomies=args.taxonomies, score_threshold=args.score_threshold,
        thresholds=args.thresholds, out=args.out, format=args.format, draw=args.draw,
        batch_size=args.batch_size, device=args.device, workers=args.workers,
        use_ema=not args.no_ema, hierarchy_decoding=args.hierarchy_decoding)


def run(opts) -> int:
    """Predict, print the summary (and the drawings written)."""
    from taxdet.detection.prediction.prelabel_run import (
        prediction_summary,
        run_prediction,
        save_run_drawings,
    )
    result = run_prediction(opts)
    print(prediction_summary(result, opts.out))
    if opts.draw:
        paths = save_run_drawings(result, opts.draw)
        print(f"wrote {len(paths)} drawings under {opts.draw}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flags.start_logging(args)
    return run_cli(lambda: run(options(args)))


if __name__ == "__main__":
    sys.exit(main())
