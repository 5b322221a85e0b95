"""COCO bbox evaluation: plain, federated over missing labels, or in a customer's names.

    python tools/evaluate.py --gt GT.json --predictions RES.json [--taxonomies PATH ...]
        [--super-taxonomy NAME] [--customer NAME] [--federated | --no-federated]
        [--engine auto|faster|pycocotools] [--json OUT] [--markdown OUT] [--plots DIR]
        [--fit-thresholds OUT.yaml [--precision P]] [--draw DIR [--images DIR]]
    python tools/evaluate.py --gt GT.json --checkpoint CKPT [--images DIR] [--no-ema]
        [--batch-size N] [--workers N] [--device D] [--save-predictions OUT.json]
        [--draw DIR] [--draw-count N] [--draw-score X] [same options as above]
    what is scored: [--run DIR [--split train|val|all]] [--source-ids TAXONOMY|FILE]
        [--cohort-by KEY]

``--predictions`` is a COCO results list, or a COCO file whose annotations carry a
``score`` (``predict.py --format coco``): its images are matched to the ground truth's by
``file_name`` and its categories by name. ``--run DIR --split val`` scores only the images
of the run's validation side (``DIR/split.json``); ``--source-ids`` reads the predictions'
image ids as a customer's own ids on a ``super.json``; ``--cohort-by`` also scores each
cohort of images (by month of ``date_captured``, ``taxonomy``, ...). With ``--checkpoint``
the model and its
taxonomies come from the checkpoint (``--taxonomies`` must then hash the same), the ground
truth's images are predicted with a progress bar (file_name relative to ``--images``,
default the ground truth's folder) and evaluated. ``--fit-thresholds`` writes per-class
score thresholds for ``predict.py --thresholds``.
Prints the 12 COCO numbers, per-class AP/AR and per-taxonomy tables. Exit 0 success,
1 bad input (message names the file and record), 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from taxdet.core.errors import run_cli
from taxdet.detection.evaluation.run_split import SIDES
from taxdet.tools import cli_flags as flags


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.split("\n")[0])
    p.add_argument("--gt", required=True, metavar="JSON", help="ground-truth COCO JSON")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", metavar="JSON", help="COCO results JSON (category_id "
                        "= column + 1 when --taxonomies is given), or a COCO file with scored "
                        "annotations (predict.py --format coco; matched by file_name and "
                        "category name; without --taxonomies, scored in the taxonomies of the "
                        "checkpoint its info names, maps_to: null labels left out)")
    flags.add_checkpoint(source, "predict the ground truth's images, then evaluate")
    flags.add_taxonomies(p, "super-taxonomy names, federated, customers")
    p.add_argument("--super-taxonomy", metavar="NAME",
                   help="the super-taxonomy to evaluate in, when the --taxonomies files hold "
                   "several (default: the only one)")
    p.add_argument("--customer", metavar="NAME", help="evaluate in this customer's label names "
                   "(default: inferred from the ground truth's category names)")
    p.add_argument("--federated", action=argparse.BooleanOptionalAction, default=None,
                   help="score each class only on images labeling it (default: on when the "
                   "ground truth marks missing classes)")
    p.add_argument("--engine", choices=("auto", "faster", "pycocotools"), default="auto",
                   help="COCO evaluation backend: faster-coco-eval, pycocotools, or auto: "
                   "faster when installed, else pycocotools (default: %(default)s)")
    flags.add_json(p)
    flags.add_markdown(p)
    p.add_argument("--plots", type=Path, metavar="DIR",
                   help="write per-class AP and PR-curve PNGs")
    p.add_argument("--fit-thresholds", type=Path, metavar="OUT",
                   help="write per-class score thresholds (YAML, for predict.py --thresholds): "
                   "the F1-best score per class at IoU 0.5")
    p.add_argument("--precision", type=float, metavar="P", help="with --fit-thresholds: "
                   "instead the lowest score whose precision reaches P (default: F1-best)")
    flags.add_overwrite(p, "existing output files that evaluate.py did not write")
    _scope_arguments(p)
    _checkpoint_arguments(p)
    flags.verbosity(p)
    return p


def _scope_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("what is scored")
    g.add_argument("--run", type=Path, metavar="DIR", help="a training run folder (or its "
                   "split.json): score only the images of one side of its train / val split; "
                   "matched by content_hash (super.json), by source_image_id (a customer's own "
                   "file) or else by id")
    g.add_argument("--split", choices=SIDES, help="with --run: the side to score "
                   "(default: val; all: train and val)")
    g.add_argument("--source-ids", metavar="TAXONOMY", help="the predictions' image_id values "
                   "are this customer's own image ids (source_image_id of a super.json ground "
                   "truth): a taxonomy name, or its annotation file when it has several")
    g.add_argument("--cohort-by", metavar="KEY", help="also score each cohort of images "
                   "sharing the image field KEY: date_captured (by month), taxonomy, "
                   "source_file or any field (FIELD:month groups dates by month); a missing "
                   "field is the cohort (none). Table printed and in --json / --markdown, one "
                   "PNG per metric in --plots")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if args.super_taxonomy and not args.taxonomies:
        p.error("--super-taxonomy needs --taxonomies")
    if args.customer and not (args.taxonomies or args.checkpoint):
        p.error("--customer needs --taxonomies (or --checkpoint)")
    if args.save_predictions is not None and not args.checkpoint:
        p.error("--save-predictions needs --checkpoint")
    if args.images is not None and not (args.checkpoint or args.draw):
        p.error("--images needs --checkpoint or --draw")
    if args.precision is not None and not args.fit_thresholds:
        p.error("--precision needs --fit-thresholds")
    if args.precision is not None and not 0 < args.precision <= 1:
        p.error(f"--precision {args.precision}: expected a value in (0, 1]")
    if args.split and not args.run:
        p.error("--split needs --run (the run folder holding split.json)")
    if args.source_ids and not args.predictions:
        p.error("--source-ids needs --predictions")
    return args


def _checkpoint_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("with --checkpoint (--images and --draw also with --predictions)")
    g.add_argument("--images", type=Path, metavar="DIR", help="folder the ground truth's "
                   "file_name entries are relative to (default: the ground truth's folder)")
    flags.add_no_ema(g)
    flags.add_hierarchy_decoding(g)
    g.add_argument("--batch-size", type=int, default=8, metavar="N",
                   help="images per forward pass (default: %(default)s)")
    flags.add_workers(g)
    flags.add_device(g)
    g.add_argument("--save-predictions", type=Path, metavar="OUT",
                   help="write the predictions as a COCO results JSON (in the customer's own "
                   "category ids in the customer view, else column + 1)")
    flags.add_draw(g, "predictions.png (predictions and ground truth drawn on the first "
                   "images, in the evaluation's class names)")
    g.add_argument("--draw-count", type=int, default=6, metavar="N",
                   help="images drawn (default: %(default)s)")
    g.add_argument("--draw-score", type=float, default=0.3, metavar="X",
                   help="lowest score drawn (default: %(default)s)")


def options(args: argparse.Namespace):
    """The library's ``EvaluateOptions`` from the parsed flags."""
    from taxdet.detection.evaluation.evaluation_run import EvaluateOptions
    return EvaluateOptions(
        gt=args.gt, predictions=args.predictions, checkpoint=args.checkpoint,
        taxonomies=args.taxonomies, super_taxonomy=args.super_taxonomy, customer=args.customer,
        federated=args.federated, engine=args.engine, run=args.run, split=args.split,
        source_ids=args.source_ids, cohort_by=args.cohort_by, images=args.images,
        use_ema=not args.no_ema, hierarchy_decoding=args.hierarchy_decoding,
        batch_size=args.batch_size, workers=args.workers, device=args.device,
        save_predictions=args.save_predictions, fit_thresholds=args.fit_thresholds,
        precision=args.precision, draw=args.draw, draw_count=args.draw_count,
        draw_score=args.draw_score, json_out=args.json, markdown_out=args.markdown,
        plots=args.plots, overwrite=args.overwrite)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flags.start_logging(args)
    return run_cli(lambda: report(options(args)))


def report(opts) -> int:
    """Evaluate, print the tables and what was read and written; write the outputs."""
    from taxdet.detection.evaluation.evaluation_run import run_evaluation, write_outputs
    run = run_evaluation(opts, say=print)
    print(run.result.format_table())
    if run.cohorts:
        print(f"\n{run.cohorts.format_table()}")
    write_outputs(run, opts, say=print)
    return 0


if __name__ == "__main__":
    sys.exit(main())
