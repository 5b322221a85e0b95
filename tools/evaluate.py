"""COCO bbox evaluation: plain, federated over missing labels, or in a customer's names.

    python tools/evaluate.py --gt GT.json --predictions RES.json [--taxonomies PATH ...]
        [--super-taxonomy NAME] [--customer NAME] [--federated | --no-federated]
        [--engine auto|faster|pycocotools] [--json OUT] [--markdown OUT] [--plots DIR]
        [--fit-thresholds OUT.yaml [--precision P]] [--draw DIR [--images DIR]]
    python tools/evaluate.py --gt GT.json --checkpoint CKPT [--images DIR] [--no-ema]
        [--batch-size N] [--workers N] [--device D] [--save-predictions OUT.json]
        [--draw DIR] [--draw-count N] [--draw-score X] [same options as above]

``--predictions`` is a COCO results list, or a COCO file whose annotations carry a
``score`` (``predict.py --format coco``): its images are matched to the ground truth's by
``file_name`` and its categories by name. With ``--checkpoint`` the model and its
taxonomies come from the checkpoint (``--taxonomies`` must then hash the same), the ground
truth's images are predicted with a progress bar (file_name relative to ``--images``,
default the ground truth's folder) and evaluated. ``--fit-thresholds`` writes per-class
score thresholds for ``predict.py --thresholds``.
Prints the 12 COCO numbers, per-class AP/AR and per-taxonomy tables. Exit 0 success,
1 bad input (message names the file and record), 2 usage error.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

if importlib.util.find_spec("supertax") is None:  # run from a checkout without installation
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import supertax  # noqa: E402
from datasets.files import check_outputs, taxonomy_inputs, write_atomic  # noqa: E402
from detection.evaluation import (EvalInputError, EvalResult, GroundTruth, evaluate,  # noqa: E402
                                  load_ground_truth)


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
    _checkpoint_arguments(p)
    return p


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
    return args


def _checkpoint_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("with --checkpoint (--images and --draw also with --predictions)")
    g.add_argument("--images", type=Path, metavar="DIR", help="folder the ground truth's "
                   "file_name entries are relative to (default: the ground truth's folder)")
    g.add_argument("--no-ema", action="store_true", help="use the raw weights, not the EMA's")
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
        out.update({f"--plots ({name})": args.plots / name
                    for name in ("ap_per_class.png", "pr_curves.png")})
    return out


def run(args: argparse.Namespace) -> EvalResult:
    """Load taxonomies, the ground truth and the predictions (or the model's); write the
    predictions, drawing and thresholds when asked; evaluate."""
    taxset = (supertax.load(args.taxonomies, super_name=args.super_taxonomy)
              if args.taxonomies else None)
    inputs = [args.gt, args.predictions, args.checkpoint]
    check_outputs(outputs(args), [p for p in inputs if p] + (
        taxonomy_inputs(taxset) if taxset else []))
    if args.checkpoint:
        taxset, truth, results = run_checkpoint(args, taxset)
    else:
        truth = load_ground_truth(args.gt, taxset=taxset, customer=args.customer)
        results = read_predictions(args, truth, taxset)
    side_outputs(args, truth, results, taxset)
    return evaluate(truth, results, taxset=taxset, federated=args.federated, engine=args.engine)


def read_predictions(args: argparse.Namespace, truth: GroundTruth,
                     taxset: supertax.TaxonomySet | None) -> str | list:
    """The predictions file as given (a COCO results list: read by ``evaluate``, which names
    it in messages), or the COCO results of a scored COCO file, in the view's ids."""
    try:
        with open(args.predictions, "rb") as f:
            head = f.read(4096).lstrip()
    except OSError:  # missing or unreadable: ``evaluate`` names it
        return args.predictions
    if not head.startswith(b"{"):
        return args.predictions
    from datasets.coco_io import json_source
    from detection.prediction.prelabels import results_from_coco
    data, source = json_source(args.predictions, "predictions", EvalInputError)
    gt, _ = json_source(args.gt, "ground truth", EvalInputError)
    results, warnings = results_from_coco(data, gt, prediction_id(truth, taxset), source)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    return results


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
    from detection.prediction.customer_labels import relabel
    names = dict(zip(truth.category_ids, truth.names))
    if truth.view == "customer":
        return relabel(results, truth.column_labels), names
    return results, names


def side_outputs(args: argparse.Namespace, truth: GroundTruth, results: str | list,
                 taxset: supertax.TaxonomySet | None) -> None:
    """--save-predictions, --draw and --fit-thresholds."""
    if isinstance(results, (str, Path)) and (args.draw or args.fit_thresholds):
        from datasets.coco_io import json_source
        results = json_source(results, "predictions", EvalInputError)[0]
    if args.save_predictions:
        saved = own_ids(results, truth)[0]
        write_atomic(args.save_predictions, json.dumps(saved) + "\n")
        print(f"wrote {args.save_predictions} ({len(saved)} predictions)")
    if args.fit_thresholds:
        fit_and_write(args, truth, results, taxset)
    if args.draw:
        from detection.prediction.drawing import save_prediction_grid
        drawn, names = own_ids(results, truth)
        path = save_prediction_grid(drawn, args.gt, args.images, names,
                                    args.draw / "predictions.png", count=args.draw_count,
                                    score_threshold=args.draw_score)
        print(f"wrote {path}")


def fit_and_write(args: argparse.Namespace, truth: GroundTruth, results: list,
                  taxset: supertax.TaxonomySet | None) -> None:
    from detection.evaluation.thresholds import fit_thresholds
    taxonomy = truth.customer if truth.view == "customer" else (
        taxset.super.name if truth.view == "super" else None)
    fitted = fit_thresholds(truth, results, federated=args.federated, precision=args.precision,
                            taxonomy=taxonomy)
    write_atomic(args.fit_thresholds, fitted.to_yaml())
    print(f"wrote {args.fit_thresholds} ({fitted.criterion}: "
          + ", ".join(f"{n} {'-' if t is None else f'{t:.3f}'}"
                      for n, t in fitted.thresholds.items()) + ")")


def run_checkpoint(args: argparse.Namespace, taxset: supertax.TaxonomySet | None
                   ) -> tuple[supertax.TaxonomySet, GroundTruth, list[dict]]:
    """Load the model, check the ground truth, predict its images: (taxonomies, ground
    truth, results in super ids)."""
    from detection.prediction.predictor import load_predictor, predict_images
    predictor, taxset, cfg = load_predictor(args.checkpoint, use_ema=not args.no_ema,
                                            device=args.device, taxset=taxset)
    # check the ground truth before the slow part
    truth = load_ground_truth(args.gt, taxset=taxset, customer=args.customer)
    results = predict_images(predictor, args.gt, args.images, taxset=taxset,
                             image_size=cfg.model.image_size, batch_size=args.batch_size,
                             workers=args.workers)
    return taxset, truth, results


def write_outputs(result: EvalResult, args: argparse.Namespace) -> None:
    if args.json:
        write_atomic(args.json, json.dumps(result.to_dict(), indent=2) + "\n")
    if args.markdown:
        write_atomic(args.markdown, result.to_markdown())
    if args.plots:
        from detection.evaluation.plots import save_plots
        for path in save_plots(result, args.plots):
            print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return supertax.run_cli(lambda: report(run(args), args))


def report(result: EvalResult, args: argparse.Namespace) -> int:
    print(result.format_table())
    write_outputs(result, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
