"""Pre-label images with a trained checkpoint, in the super-taxonomy or in a customer's labels.

    python tools/predict.py --checkpoint CKPT (--images DIR | --image-list FILE | GLOB ...)
        [--customer NAME [--categories JSON]] [--score-threshold X] [--thresholds YAML]
        [--max-detections N] [--out OUT.json] [--format coco|label-studio|results]
        [--url-prefix URL] [--draw DIR] [--batch-size N] [--backend torch|onnxruntime]
        [--threads N] [--device D] [--workers N] [--no-ema] [--[no-]hierarchy-decoding]
        [--taxonomies PATH ...]

Image sizes are read from the files (EXIF orientation applied, like training); unreadable
images are skipped with a counted warning. Boxes are in original pixels; ``file_name`` is
relative to the images' folder. With ``--customer`` the ids are the customer's own: category
ids from ``--categories``, else from the annotation file its taxonomy's ``data:`` names
(``--taxonomies``, else the taxonomy files the checkpoint was trained with); none found is an
error (exit 1), never 1..L. Image ids are that file's where it holds the image. Each image
gets at most ``--max-detections`` detections of the customer's own classes, as its exported
model. ``--backend onnxruntime`` exports the model to ONNX in memory and runs it with ONNX
Runtime and the customer's sliced head, as ``serve.py`` does (the same pre-labels as torch
within 1 px and 1e-3). ``coco`` writes a full COCO file (images, categories, detections as
annotations with a ``score``, ``segmentation`` []) that CVAT (datumaro's coco_instances)
imports and ``evaluate.py --predictions`` scores; ``label-studio`` a task list with
predictions and ``OUT.label_config.xml`` beside it; ``results`` a COCO results list. Exit 0
success, 1 bad input, 2 usage error.
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
                     "(quoted; ** is recursive); file_name relative to the folder before the "
                     "first wildcard")
    src.add_argument("--images", type=Path, metavar="DIR", help="every image under DIR, "
                     "recursively; file_name relative to DIR")
    src.add_argument("--image-list", type=Path, metavar="FILE", help="text file of image "
                     "paths, one a line (# comments); relative to the file's folder")
    out = p.add_argument_group("labels and output")
    out.add_argument("--customer", metavar="NAME", help="write that customer's labels and "
                     "its own category and image ids (default: the super-taxonomy's classes, "
                     "id = column + 1)")
    out.add_argument("--categories", type=Path, metavar="JSON", help="with --customer: that "
                     "customer's own COCO file, whose categories give the ids by name (default: "
                     "the annotation file of its taxonomy's data:, from --taxonomies or the "
                     "checkpoint's training taxonomy files; a file lacking its labels is "
                     "refused)")
    flags.add_taxonomies(out, "hashing like the checkpoint's (default: the checkpoint's own)")
    out.add_argument("--score-threshold", type=float, default=0.3, metavar="X",
                     help="lowest score kept, for classes --thresholds does not list "
                     "(default: %(default)s)")
    out.add_argument("--thresholds", type=Path, metavar="YAML", help="per-class thresholds, "
                     "e.g. from evaluate.py --fit-thresholds (default: none)")
    flags.add_out(out, "the pre-labels (JSON)", default=Path("predictions.json"))
    out.add_argument("--max-detections", type=int, default=100, metavar="N",
                     help="most detections per image, the best of the output's own classes "
                     "(default: %(default)s)")
    out.add_argument("--format", choices=("coco", "label-studio", "results"), default="coco",
                     help="coco: full COCO file with scored annotations (CVAT); label-studio: "
                     "tasks with predictions, and OUT.label_config.xml; results: COCO results "
                     "list (default: %(default)s)")
    out.add_argument("--url-prefix", metavar="URL", help="label-studio: image URL = URL + "
                     "file_name, percent-encoded (default: /data/local-files/?d=, Label "
                     "Studio's local files with LOCAL_FILES_DOCUMENT_ROOT at the images' "
                     "folder)")
    flags.add_draw(out, "each image with its detections drawn, as <file_name>.png,",
                   default="no drawings")
    flags.add_overwrite(out, "existing --out / --draw files that predict.py did not write")
    run = p.add_argument_group("running")
    run.add_argument("--batch-size", type=int, default=8, metavar="N",
                     help="images per forward pass (default: %(default)s)")
    flags.add_backend(run, "torch", "%(default)s, which runs on --device and with every "
                      "checkpoint; ONNX Runtime needs one class head")
    flags.add_device(run, "for the torch backend (ONNX Runtime runs on the CPU)")
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
    if args.batch_size < 1 or args.workers < 0 or args.max_detections < 1:
        p.error("--batch-size and --max-detections must be >= 1 and --workers >= 0")
    if args.url_prefix is not None and args.format != "label-studio":
        p.error("--url-prefix needs --format label-studio")
    return args


def options(args: argparse.Namespace):
    """The library's ``PredictOptions`` from the parsed flags."""
    from taxdet.detection.prediction.prelabel_run import PredictOptions
    return PredictOptions(
        checkpoint=args.checkpoint, images=args.images, image_list=args.image_list,
        patterns=tuple(args.patterns), customer=args.customer, categories=args.categories,
        taxonomies=args.taxonomies, score_threshold=args.score_threshold,
        thresholds=args.thresholds, out=args.out, format=args.format,
        max_detections=args.max_detections, url_prefix=args.url_prefix, draw=args.draw,
        batch_size=args.batch_size, workers=args.workers,
        device="cpu" if args.backend == "onnxruntime" else args.device,
        use_ema=not args.no_ema, hierarchy_decoding=args.hierarchy_decoding,
        overwrite=args.overwrite)


def detector(args: argparse.Namespace):
    """None (``--backend torch``: ``PredictBench``), or the trunk backend's detector factory
    (the service's, ``taxdet.detection.export.trunk_backends``)."""
    if args.backend == "torch":
        return None
    from taxdet.detection.export.trunk_backends import detector_factory
    return detector_factory(args.backend, args.threads)


def run(opts, detector=None) -> int:
    """Predict (``detector``: ``run_prediction``'s), print the summary (and the drawings
    written)."""
    from taxdet.detection.prediction.prelabel_run import (
        prediction_summary,
        run_prediction,
        save_run_drawings,
    )
    result = run_prediction(opts, detector)
    print(prediction_summary(result, opts.out))
    if opts.format == "label-studio":
        from taxdet.detection.prediction.prelabel_files import config_path
        print(f"wrote {config_path(opts.out)} (the labeling config of its labels)")
    if opts.draw:
        paths = save_run_drawings(result, opts.draw)
        print(f"wrote {len(paths)} drawings under {opts.draw}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flags.start_logging(args)
    return run_cli(lambda: run(options(args), detector(args)))


if __name__ == "__main__":
    sys.exit(main())
