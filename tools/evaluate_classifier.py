"""Evaluate an image classifier: accuracy per taxonomy and class (top-1 .. top-5, in each
customer's labels and in the super-taxonomy), a confusion matrix, calibration (ECE and a
reliability diagram) and OOD rejection (max-softmax, max-logit and energy: AUROC, FPR at 95% TPR).

    python tools/evaluate_classifier.py --checkpoint runs/cls/last.pt --data taxonomies/driving \\
        --json runs/cls/eval.json --markdown runs/cls/eval.md --plots runs/cls

The images are the classification data: entries of the taxonomies of --data, split as the run
split them (--split val: the images it held out); only the checkpoint's own taxonomies are
scored. The OOD images are those of labels with maps_to: null (never trained on), plus any
--ood folder. Exit codes: 0 done, 1 bad input, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from taxdet.core.errors import ConfigError, run_cli
from taxdet.core.files import (
    check_outputs,
    classification_inputs,
    images_under,
    taxonomy_inputs,
    write_atomic,
)
from taxdet.tools import cli_flags as flags

PLOTS = ("confusion.png", "reliability.png")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="evaluate_classifier.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    flags.add_checkpoint(p, "of tools/train_classifier.py (last.pt or best.pt); its EMA "
                         "weights are scored when it has them", required=True, type_=str)
    flags.add_taxonomies(p, "their classification data: entries are scored (default: "
                         "taxonomies/driving)", default=["taxonomies/driving"], names=("--data",))
    p.add_argument("--super-taxonomy", metavar="NAME",
                   help="the super-taxonomy to read when the files hold several (default: the "
                   "checkpoint's)")
    p.add_argument("--split", choices=("val", "train", "all"), default="val",
                   help="which images of the checkpoint's stable split to score (default: "
                   "%(default)s)")
    p.add_argument("--ood", nargs="+", default=[], metavar="DIR",
                   help="more OOD images: every image file below these folders (default: only "
                   "the maps_to: null images of the data)")
    flags.add_device(p)
    p.add_argument("--batch-size", type=int, default=64, metavar="N",
                   help="images per forward pass (default: %(default)s)")
    flags.add_workers(p, "data-loader processes")
    flags.add_json(p)
    flags.add_markdown(p)
    p.add_argument("--plots", type=Path, metavar="DIR",
                   help="write confusion.png and reliability.png into DIR")
    flags.add_overwrite(p, "existing output files that evaluate_classifier.py did not write")
    flags.verbosity(p)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags.start_logging(args)
    return run_cli(lambda: run(args))


def _inputs(args: argparse.Namespace) -> Iterator[Path]:
    """Every file this run reads: the checkpoint, the taxonomy files, their classification data
    (CSVs and images) and the --ood images (listed lazily, only when an output exists)."""
    import taxdet.supertax as supertax
    from taxdet.core.errors import InputError
    yield Path(args.checkpoint)
    for path in map(Path, args.data):
        yield from [path] if path.is_file() else [*path.rglob("*.yaml"), *path.rglob("*.yml")]
    yield from images_under(args.ood)
    try:
        taxset = supertax.load(args.data, super_name=args.super_taxonomy)
    except InputError:  # reported by the evaluation itself, which picks the checkpoint's
        return
    yield from taxonomy_inputs(taxset)
    yield from classification_inputs(taxset)


def run(args: argparse.Namespace) -> int:
    """Check the outputs, score, print the tables, write the outputs."""
    if args.batch_size < 1 or args.workers < 0:
        raise ConfigError(f"--batch-size must be >= 1 and --workers >= 0, got "
                          f"{args.batch_size}, {args.workers}")
    outputs = {"--json": args.json, "--markdown": args.markdown}
    if args.plots:
        outputs.update({f"--plots ({name})": args.plots / name for name in PLOTS})
    check_outputs(outputs, _inputs(args), tool="evaluate_classifier", overwrite=args.overwrite)
    from taxdet.detection.classification.classifier_plots import save_plots
    from taxdet.detection.classification.classifier_predictor import evaluate_checkpoint
    result = evaluate_checkpoint(args.checkpoint, args.data, args.split, args.super_taxonomy,
                                 args.ood, args.device, args.batch_size, args.workers)
    print(result.format_table())
    if args.json:
        write_atomic(args.json, json.dumps(result.to_dict(), indent=2) + "\n")
    if args.markdown:
        write_atomic(args.markdown, result.to_markdown())
    if args.plots:
        save_plots(result, args.plots)
    return 0


if __name__ == "__main__":
    sys.exit(main())
