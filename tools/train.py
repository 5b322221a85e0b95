"""Train one EfficientDet across every customer dataset of a taxonomy set.

    python tools/train.py --taxonomies taxonomies/driving --output runs/exp1 \\
        --model efficientdet_d0 --image-size 256 --batch-size 8 --steps 600
    python tools/train.py --data runs/super.json --taxonomies taxonomies/driving ...
    python tools/train.py --resume runs/exp1/last.pt [--steps 1200]

Every option is also ``--section.field`` (listed below by section) and may come from a
YAML file given with ``--config``: defaults < the checkpoint's config (``--resume``) < the
YAML file < flags. Flags take YAML
syntax (``--optim.amp false``, ``--resume null``, ``--augment.scale_jitter '[0.5, 1.5]'``).
``torchrun --nproc_per_node N tools/train.py ...`` trains data-parallel.
Exit codes: 0 done, 1 bad input or failed run, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import sys

from taxdet.core.errors import run_cli
from taxdet.detection.training.cli_options import parse_args, resolve, training_parser  # no torch
from taxdet.tools import cli_flags as flags


def build_parser() -> argparse.ArgumentParser:
    """Every option, grouped by config section; building it imports no torch (fast --help)."""
    parser = training_parser(
        "train.py", __doc__, "%(prog)s [--config YAML] [--taxonomies PATH ...] [--data JSON] "
        "[--output DIR] [--resume CKPT] [options]")
    flags.verbosity(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = parse_args(build_parser(), argv)
    flags.start_logging(args)
    try:
        return run_cli(lambda: run(args))
    finally:
        from taxdet.detection.engine import distributed  # torch: imported once parsing is done
        distributed.shutdown()


def run(args: argparse.Namespace) -> int:
    """Resolve the config, train, print the summary (rank 0). Bad input or a diverging run
    raises an ``InputError``."""
    from taxdet.detection.training.trainer import Trainer
    cfg = resolve(args)
    from taxdet.detection.engine.run_lock import locked_run
    with locked_run(cfg, args.config):  # one run per folder, for the whole run
        trainer = Trainer(cfg)
        state = trainer.fit()
    if trainer.dist.is_main:
        print(trainer.summary())
        print(json.dumps({"best_AP": state.best_metric, "steps": state.step,
                          "output": cfg.run.output}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
