"""Train one EfficientDet across every customer dataset of a taxonomy set.

    python tools/train.py --taxonomies taxonomies/driving --output runs/exp1 \\
        --model efficientdet_d0 --image-size 256 --batch-size 8 --steps 600

Every option is also ``--section.field`` (listed below by section) and may come from a
YAML file given with ``--config``: defaults < the YAML file < flags. Flags take YAML
syntax (``--optim.amp false``, ``--resume null``, ``--augment.scale_jitter '[0.5, 1.5]'``).
``torchrun --nproc_per_node N tools/train.py ...`` trains data-parallel.
Exit codes: 0 done, 1 bad input or failed run, 2 usage.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

if importlib.util.find_spec("supertax") is None:  # run from a checkout without installation
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from detection.training.cli_options import add_arguments, resolve  # no torch (fast --help)
from supertax.errors import run_cli


def build_parser() -> argparse.ArgumentParser:
    """Every option, grouped by config section; building it imports no torch (fast --help)."""
    parser = argparse.ArgumentParser(
        prog="train.py", description=__doc__, allow_abbrev=False,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="%(prog)s [--config YAML] [--taxonomies PATH ...] [--output DIR] [options]")
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_cli(lambda: run(args))
    finally:
        from detection.training import distributed  # torch: imported once parsing is done
        distributed.shutdown()


def run(args: argparse.Namespace) -> int:
    """Resolve the config, train, print the summary (rank 0). Bad input or a diverging run
    raises an ``InputError``."""
    from detection.training.trainer import Trainer
    cfg = resolve(args)
    trainer = Trainer(cfg)
    state = trainer.fit()
    if trainer.dist.is_main:
        print(trainer.summary())
        print(json.dumps({"best_AP": state.best_ap, "steps": state.step, "output": cfg.run.output}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
