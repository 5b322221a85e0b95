"""COCO bbox evaluation: plain, federated over missing labels, or in a customer's names.

    python tools/evaluate.py --gt GT.json --predictions RES.json [--taxonomies PATH ...]
        [--customer NAME] [--federated | --no-federated] [--engine auto|faster|pycocotools]
        [--json OUT] [--markdown OUT] [--plots DIR]

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
from detection.evaluation import EvalInputError, EvalResult, evaluate  # noqa: E402


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.split("\n")[0])
    p.add_argument("--gt", required=True, help="ground-truth COCO JSON")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--predictions", help="COCO results JSON (category_id = column + 1 "
                        "when --taxonomies is given)")
    # --checkpoint CKPT [--images DIR] (predict, then evaluate) joins this group with training.
    p.add_argument("--taxonomies", nargs="+", metavar="PATH",
                   help="taxonomy YAML files or folders (super-taxonomy names, federated, "
                   "customers)")
    p.add_argument("--customer", help="evaluate in this customer's label names "
                   "(default: inferred from the ground truth's category names)")
    p.add_argument("--federated", action=argparse.BooleanOptionalAction, default=None,
                   help="score each class only on images labeling it (default: on when the "
                   "ground truth marks missing classes)")
    p.add_argument("--engine", choices=("auto", "faster", "pycocotools"), default="auto")
    p.add_argument("--json", type=Path, metavar="OUT", help="write the results as JSON")
    p.add_argument("--markdown", type=Path, metavar="OUT", help="write the tables as Markdown")
    p.add_argument("--plots", type=Path, metavar="DIR", help="write per-class AP and PR-curve PNGs")
    args = p.parse_args(argv)
    if args.customer and not args.taxonomies:
        p.error("--customer needs --taxonomies")
    return args


def run(args: argparse.Namespace) -> EvalResult:
    """Load taxonomies, obtain predictions and evaluate."""
    taxset = supertax.load(args.taxonomies) if args.taxonomies else None
    return evaluate(args.gt, args.predictions, taxset=taxset, customer=args.customer,
                    federated=args.federated, engine=args.engine)


def write_outputs(result: EvalResult, args: argparse.Namespace) -> None:
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    if args.markdown:
        args.markdown.parent.mkdir(parents=True, exist_ok=True)
        args.markdown.write_text(result.to_markdown())
    if args.plots:
        from detection.evaluation.plots import save_plots
        for path in save_plots(result, args.plots):
            print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        result = run(args)
    except (EvalInputError, supertax.TaxonomyError, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    print(result.format_table())
    write_outputs(result, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
