"""Train one image classifier across every customer's classification dataset of a taxonomy set.

    python tools/train_classifier.py --taxonomies taxonomies/driving --output runs/cls \\
        --model resnet18 --image-size 64 --loss softmax --batch-size 32 --steps 600
    python tools/train_classifier.py --resume runs/cls/last.pt [--steps 1200]

The taxonomies' ``data:`` entries ``classification: DIR`` (ImageFolder layout) or
``classification_csv: FILE`` (file,label) are concatenated: labels map to super classes, each
image carries its taxonomy's label mask, and the masked loss (``--loss softmax|bce|focal|
hierarchical``) trains only what each customer labels; ``--no-taxonomy-mask`` trains the plain
merge. Images of labels with ``maps_to: null`` are the OOD set (never trained on). Every option
is also ``--section.field`` and may come from a YAML file given with ``--config``: defaults <
the checkpoint's config (``--resume``) < the YAML file < flags.
Exit codes: 0 done, 1 bad input or failed run, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys

from taxdet.core.errors import run_cli
from taxdet.detection.classification.classifier_config import CLASSIFIER  # no torch
from taxdet.detection.training.cli_options import parse_args, resolve, training_parser
from taxdet.tools import cli_flags as flags


def build_parser() -> argparse.ArgumentParser:
    """Every option, grouped by config section (the detector's optim, run and split among
    them)."""
    parser = training_parser(
        "train_classifier.py", __doc__, "%(prog)s [--config YAML] [--taxonomies PATH ...] "
        "[--output DIR] [--loss {softmax,bce,focal,hierarchical}] [--resume CKPT] [options]",
        CLASSIFIER)
    flags.verbosity(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    flags.start_logging(args)
    return run_cli(lambda: run(args))


def run(args: argparse.Namespace) -> int:
    """Resolve the config, train, print the summary. Bad input or a diverging run raises an
    ``InputError``."""
    from taxdet.detection.classification.classifier_trainer import ClassifierTrainer
    cfg = resolve(args, CLASSIFIER)
    from taxdet.detection.engine.run_lock import locked_run
    with locked_run(cfg, args.config):  # one run per folder, for the whole run
        trainer = ClassifierTrainer(cfg)
        state = trainer.fit()
    print(trainer.summary())
    print(json.dumps({"best_accuracy": state.best_metric, "steps": state.step,
                      "output": cfg.run.output}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
