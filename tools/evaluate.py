"""COCO bbox evaluation: plain, federated over missing labels, or in a customer's names.

    python tools/evaluate.py --gt GT.json --predictions RES.json [--taxonomies PATH ...]
        [--super-taxonomy NAME] [--customer NAME] [--federated | --no-federated]
        [--engine auto|faster|pycocotools] [--json OUT] [--markdown OUT] [--plots DIR]
    python tools/evaluate.py --gt GT.json --checkpoint CKPT [--images DIR] [--no-ema]
        [--batch-size N] [--workers N] [--device D] [--save-predictions OUT.json]
        [--draw DIR] [--draw-count N] [--draw-score X] [same options as above]

With ``--checkpoint`` the model and its taxonomies come from the checkpoint (``--taxonomies``
must then hash the same), the ground truth's images are predicted with a progress bar
(file_name relative to ``--images``, default the ground truth's folder) and evaluated.
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
from detection.evaluation import EvalResult, evaluate, load_ground_truth  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.split("\n")[0])
    p.add_argument("--gt", required=True, metavar="JSON", help="ground-truth COCO JSON")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", metavar="JSON", help="COCO results JSON (category_id "
                        "= column + 1 when --taxonomies is given)")
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
    _checkpoint_arguments(p)
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if args.super_taxonomy and not args.taxonomies:
        p.error("--super-taxonomy needs --taxonomies")
    if args.customer and not (args.taxonomies or args.checkpoint):
        p.error("--customer needs --taxonomies (or --checkpoint)")
    given = [f for f in ("images", "save_predictions", "draw") if getattr(args, f) is not None]
    if given and not args.checkpoint:
        p.error(f"--{given[0].replace('_', '-')} needs --checkpoint")
    return args


def _checkpoint_arguments(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("with --checkpoint")
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
                   help="write the predictions as a COCO results JSON")
    g.add_argument("--draw", type=Path, metavar="DIR", help="write DIR/predictions.png: "
                   "predictions drawn on the first images")
    g.add_argument("--draw-count", type=int, default=6, metavar="N",
                   help="images drawn (default: %(default)s)")
    g.add_argument("--draw-score", type=float, default=0.3, metavar="X",
                   help="lowest score drawn (default: %(default)s)")


def outputs(args: argparse.Namespace) -> dict[str, Path | None]:
    """Every file this run may write, by the flag that names it."""
    out = {"--json": args.json, "--markdown": args.markdown,
           "--save-predictions": args.save_predictions,
           "--draw": args.draw / "predictions.png" if args.draw else None}
    if args.plots:
        out.update({f"--plots ({name})": args.plots / name
                    for name in ("ap_per_class.png", "pr_curves.png")})
    return out


def run(args: argparse.Namespace) -> EvalResult:
    """Load taxonomies, obtain predictions and evaluate."""
    taxset = (supertax.load(args.taxonomies, super_name=args.super_taxonomy)
              if args.taxonomies else None)
    inputs = [args.gt, args.predictions, args.checkpoint]
    check_outputs(outputs(args), [p for p in inputs if p] + (
        taxonomy_inputs(taxset) if taxset else []))
    if args.checkpoint:
        return run_checkpoint(args, taxset)
    return evaluate(args.gt, args.predictions, taxset=taxset, customer=args.customer,
                    federated=args.federated, engine=args.engine)


def run_checkpoint(args: argparse.Namespace, taxset: supertax.TaxonomySet | None) -> EvalResult:
    """Load the model, check the ground truth, predict its images (writing the predictions and
    the drawing when asked), then evaluate in the checkpoint's taxonomies."""
    from detection.prediction.predictor import load_predictor, predict_images
    predictor, taxset, cfg = load_predictor(args.checkpoint, use_ema=not args.no_ema,
                                            device=args.device, taxset=taxset)
    # check the ground truth before the slow part
    truth = load_ground_truth(args.gt, taxset=taxset, customer=args.customer)
    results = predict_images(predictor, args.gt, args.images, taxset=taxset,
                             image_size=cfg.model.image_size, batch_size=args.batch_size,
                             workers=args.workers)
    if args.save_predictions:
        write_atomic(args.save_predictions, json.dumps(results) + "\n")
        print(f"wrote {args.save_predictions} ({len(results)} predictions)")
    if args.draw:
        from detection.prediction.drawing import save_prediction_grid
        path = save_prediction_grid(results, args.gt, args.images, taxset.names,
                                    args.draw / "predictions.png", count=args.draw_count,
                                    score_threshold=args.draw_score)
        print(f"wrote {path}")
    return evaluate(truth, results, taxset=taxset, federated=args.federated, engine=args.engine)


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
