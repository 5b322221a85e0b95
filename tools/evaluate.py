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
import json
import sys
from pathlib import Path

import taxdet.supertax as supertax
from taxdet.core.files import check_outputs, taxonomy_inputs, write_atomic
from taxdet.detection.evaluation import (
    EvalInputError,
    EvalResult,
    GroundTruth,
    evaluate,
    load_ground_truth,
)
from taxdet.detection.evaluation.cohorts import CohortReport, evaluate_cohorts
from taxdet.detection.evaluation.run_split import SIDES, split_path
from taxdet.detection.evaluation.scope import Scope, ground_truth_scope, scoped_predictions


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.split("\n")[0])
    p.add_argument("--gt", required=True, metavar="JSON", help="ground-truth COCO JSON")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", metavar="JSON", help="COCO results JSON (category_id "
                        "= column + 1 when --taxonomies is given), or a COCO file with scored "
                        "annotations (predict.py --format coco; matched by file_name and "
                        "category name)")
    source.add_argument("--checkpoint", type=Path, metavar="CKPT",
                        help="training checkpoint: predict the ground truth's images, then "
                        "evaluate")
    p.add_argument("--taxonomies", nargs="+", metavar="PATH",
                   help="taxonomy YAML files or folders (super-taxonomy names, federated, "
                   "customers)")
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
    p.add_argument("--json", type=Path, metavar="OUT", help="write the results as JSON")
    p.add_argument("--markdown", type=Path, metavar="OUT", help="write the tables as Markdown")
    p.add_argument("--plots", type=Path, metavar="DIR",
                   help="write per-class AP and PR-curve PNGs")
    p.add_argument("--fit-thresholds", type=Path, metavar="OUT",
                   help="write per-class score thresholds (YAML, for predict.py --thresholds): "
                   "the F1-best score per class at IoU 0.5")
    p.add_argument("--precision", type=float, metavar="P", help="with --fit-thresholds: "
                   "instead the lowest score whose precision reaches P (default: F1-best)")
    _scope_arguments(p)
    _checkpoint_arguments(p)
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
    g.add_argument("--no-ema", action="store_true", help="use the raw weights, not the EMA's")
    g.add_argument("--hierarchy-decoding", action=argparse.BooleanOptionalAction, default=None,
                   help="score each parent class as the max over its descendants before NMS "
                   "(a child's detection is also its ancestors'; default: on when the "
                   "super-taxonomy has any parent)")
    g.add_argument("--batch-size", type=int, default=8, metavar="N",
                   help="images per forward pass (default: %(default)s)")
    g.add_argument("--workers", type=int, default=2, metavar="N",
                   help="image-loading processes (default: %(default)s)")
    g.add_argument("--device", default="auto",
                   help="auto | cpu | cuda | cuda:N (default: %(default)s)")
    g.add_argument("--save-predictions", type=Path, metavar="OUT",
                   help="write the predictions as a COCO results JSON (in the customer's own "
                   "category ids in the customer view, else column + 1)")
    g.add_argument("--draw", type=Path, metavar="DIR", help="write DIR/predictions.png: "
                   "predictions and ground truth drawn on the first images, in the "
                   "evaluation's class names")
    g.add_argument("--draw-count", type=int, default=6, metavar="N",
                   help="images drawn (default: %(default)s)")
    g.add_argument("--draw-score", type=float, default=0.3, metavar="X",
                   help="lowest score drawn (default: %(default)s)")


def outputs(args: argparse.Namespace) -> dict[str, Path | None]:
    """Every file this run may write, by the flag that names it."""
    out = {"--json": args.json, "--markdown": args.markdown,
           "--save-predictions": args.save_predictions, "--fit-thresholds": args.fit_thresholds,
           "--draw": args.draw / "predictions.png" if args.draw else None}
    if args.plots:
        from taxdet.detection.evaluation.eval_plots import COHORT_METRICS
        names = ["ap_per_class.png", "pr_curves.png"] + (
            [f"cohorts_{m}.png" for m in COHORT_METRICS] if args.cohort_by else [])
        out.update({f"--plots ({name})": args.plots / name for name in names})
    return out


def run(args: argparse.Namespace) -> tuple[EvalResult, CohortReport | None, Scope]:
    """Load taxonomies, the ground truth (one side of a run's split) and the predictions (or
    the model's); write the predictions, drawing and thresholds when asked; evaluate, per
    cohort too."""
    taxset = (supertax.load(args.taxonomies, super_name=args.super_taxonomy)
              if args.taxonomies else None)
    inputs = [args.gt, args.predictions, args.checkpoint, args.run and split_path(args.run)]
    check_outputs(outputs(args), [p for p in inputs if p] + (
        taxonomy_inputs(taxset) if taxset else []))
    scope = ground_truth_scope(args.gt, args.run, args.split)
    if args.checkpoint:
        taxset, truth, results = run_checkpoint(args, taxset, scope)
    else:
        truth = load_ground_truth(scope.gt, taxset=taxset, customer=args.customer,
                                  name=scope.source)
        results = read_predictions(args, truth, taxset, scope)
    for line in scope.notes:
        print(line)
    for w in scope.warnings:
        print(f"warning: {w}", file=sys.stderr)
    side_outputs(args, truth, results, taxset, scope)
    result = evaluate(truth, results, taxset=taxset, federated=args.federated, engine=args.engine)
    cohorts = (evaluate_cohorts(scope.gt, results, args.cohort_by, result, taxset=taxset,
                                engine=args.engine, source=scope.source)
               if args.cohort_by else None)
    return result, cohorts, scope


def read_predictions(args: argparse.Namespace, truth: GroundTruth,
                     taxset: supertax.TaxonomySet | None, scope: Scope) -> list:
    """The predictions as a COCO results list in the view's ids, checked against the whole
    ground truth and restricted to the scored images. A scored COCO file (a JSON object) is
    matched to the ground truth by file_name and category name."""
    from taxdet.core.json_files import json_source
    data, source = json_source(args.predictions, "predictions", EvalInputError)
    if isinstance(data, dict):
        if args.source_ids:
            raise EvalInputError(f"{source}: --source-ids applies to a COCO results list; a "
                                 "scored COCO file is matched to the ground truth by file_name")
        from taxdet.detection.prediction.prelabels import results_from_coco
        data, warnings = results_from_coco(data, scope.full, prediction_id(truth, taxset), source)
        for w in warnings:
            print(f"warning: {w}", file=sys.stderr)
    return scoped_predictions(scope, data, source, set(truth.prediction_ids),
                              source_ids=args.source_ids, taxonomies_given=taxset is not None)


def prediction_id(truth: GroundTruth, taxset: supertax.TaxonomySet | None):
    """Category name -> the id ``evaluate`` expects for it (None: a label not predicted)."""
    if truth.view == "customer":
        columns = taxset.label_columns(truth.customer)
        ids = {n: None if j is None else j + 1 for n, j in columns.items()}
    else:
        ids = dict(zip(truth.names, truth.category_ids))

    def lookup(name: str) -> int | None:
        if name not in ids:
            raise EvalInputError(f"predictions: category {name!r} is not a category of the "
                                 f"evaluation ({', '.join(truth.names)})")
        return ids[name]
    return lookup


def own_ids(results: list[dict], truth: GroundTruth) -> tuple[list[dict], dict[int, str]]:
    """(results, category id -> name) in the ground truth's own ids: a customer view's super
    columns become the customer's labels (a label mapped to a parent takes its column)."""
    from taxdet.detection.prediction.customer_labels import relabel
    names = dict(zip(truth.category_ids, truth.names))
    if truth.view == "customer":
        return relabel(results, truth.column_labels), names
    return results, names


def side_outputs(args: argparse.Namespace, truth: GroundTruth, results: list,
                 taxset: supertax.TaxonomySet | None, scope: Scope) -> None:
    """--save-predictions, --draw and --fit-thresholds."""
    if args.save_predictions:
        saved = own_ids(results, truth)[0]
        write_atomic(args.save_predictions, json.dumps(saved) + "\n")
        print(f"wrote {args.save_predictions} ({len(saved)} predictions)")
    if args.fit_thresholds:
        fit_and_write(args, truth, results, taxset)
    if args.draw:
        from taxdet.detection.prediction.drawing import save_prediction_grid
        drawn, names = own_ids(results, truth)
        path = save_prediction_grid(drawn, scope.gt, images_folder(args), names,
                                    args.draw / "predictions.png", count=args.draw_count,
                                    score_threshold=args.draw_score)
        print(f"wrote {path}")


def fit_and_write(args: argparse.Namespace, truth: GroundTruth, results: list,
                  taxset: supertax.TaxonomySet | None) -> None:
    from taxdet.detection.evaluation.threshold_fit import fit_thresholds
    taxonomy = truth.customer if truth.view == "customer" else (
        taxset.super.name if truth.view == "super" else None)
    fitted = fit_thresholds(truth, results, federated=args.federated, precision=args.precision,
                            taxonomy=taxonomy)
    write_atomic(args.fit_thresholds, fitted.to_yaml())
    print(f"wrote {args.fit_thresholds} ({fitted.criterion}: "
          + ", ".join(f"{n} {'-' if t is None else f'{t:.3f}'}"
                      for n, t in fitted.thresholds.items()) + ")")


def images_folder(args: argparse.Namespace) -> Path:
    """The folder the ground truth's file_name entries are relative to."""
    return args.images if args.images is not None else Path(args.gt).parent


def run_checkpoint(args: argparse.Namespace, taxset: supertax.TaxonomySet | None, scope: Scope
                   ) -> tuple[supertax.TaxonomySet, GroundTruth, list[dict]]:
    """Load the model, check the ground truth, predict its (selected) images: (taxonomies,
    ground truth, results in super ids)."""
    from taxdet.detection.prediction.predictor import load_predictor, predict_images
    predictor, taxset, cfg = load_predictor(args.checkpoint, use_ema=not args.no_ema,
                                            device=args.device, taxset=taxset,
                                            hierarchy_decoding=args.hierarchy_decoding)
    # check the ground truth before the slow part
    truth = load_ground_truth(scope.gt, taxset=taxset, customer=args.customer, name=scope.source)
    results = predict_images(predictor, scope.gt, images_folder(args), taxset=taxset,
                             image_size=cfg.model.image_size, batch_size=args.batch_size,
                             workers=args.workers)
    return taxset, truth, results


def write_outputs(result: EvalResult, cohorts: CohortReport | None, scope: Scope,
                  args: argparse.Namespace) -> None:
    if args.json:
        data = {**result.to_dict(), **({"split": scope.split} if scope.split else {}),
                **({"cohorts": cohorts.to_dict()} if cohorts else {})}
        write_atomic(args.json, json.dumps(data, indent=2) + "\n")
    if args.markdown:
        write_atomic(args.markdown, result.to_markdown()
                     + (f"\n{cohorts.to_markdown()}" if cohorts else ""))
    if args.plots:
        from taxdet.detection.evaluation.eval_plots import save_cohort_plots, save_plots
        paths = save_plots(result, args.plots)
        paths += save_cohort_plots(cohorts, args.plots) if cohorts else []
        for path in paths:
            print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return supertax.run_cli(lambda: report(*run(args), args))


def report(result: EvalResult, cohorts: CohortReport | None, scope: Scope,
           args: argparse.Namespace) -> int:
    print(result.format_table())
    if cohorts:
        print(f"\n{cohorts.format_table()}")
    write_outputs(result, cohorts, scope, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
