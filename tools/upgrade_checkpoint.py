"""Convert a checkpoint of an older version to the current, safely loadable format.

    python tools/upgrade_checkpoint.py OLD.pt NEW.pt [--trust]

Older checkpoints held the numpy and python RNG states pickled, so reading them needs
``torch.load(weights_only=False)``, which runs whatever code the file asks for. This tool does
that ONLY with ``--trust``: give it only for a file you wrote yourself or got from someone you
trust. Without ``--trust`` it converts only files that load safely (e.g. a state dict without a
digest). NEW gets the RNG states as tensors and the SHA-256 digest (see
``taxdet.detection.engine.checkpoint``); it is written atomically and must not exist yet (OLD is
never changed). Exit 0 written, 1 bad input (``error: ...``), 2 usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from taxdet.core.errors import InputNotFoundError, OutputError, run_cli
from taxdet.core.files import check_outputs
from taxdet.tools import cli_flags as flags


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="upgrade_checkpoint.py", description=__doc__.split("\n")[0])
    p.add_argument("old", type=Path, metavar="OLD", help="the checkpoint to convert (unchanged)")
    p.add_argument("new", type=Path, metavar="NEW", help="where to write the converted one "
                   "(must not exist)")
    p.add_argument("--trust", action="store_true", help="allow an unsafe load of OLD, which can "
                   "run code stored in it: only for files from a trusted source")
    flags.verbosity(p)
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def check_paths(old: Path, new: Path) -> None:
    if not old.is_file():
        raise InputNotFoundError(f"{old}: no such checkpoint")
    if new.resolve() == old.resolve():
        raise OutputError(f"{new}: is OLD itself; write the converted checkpoint to a new path")
    if new.exists() or new.is_symlink():
        raise OutputError(f"{new}: already exists; give a path that does not exist yet")
    check_outputs({"NEW": new}, [old], tool="upgrade_checkpoint")


def upgrade(args: argparse.Namespace) -> int:
    from taxdet.detection.engine import checkpoint  # torch: imported once parsing is done
    from taxdet.detection.engine.checkpoint_upgrade import convert, read_old
    check_paths(args.old, args.new)
    state = convert(read_old(args.old, args.trust), args.old)
    checkpoint.save_atomic(state, args.new)
    checkpoint.load(args.new, bare=True)  # reads back safely, digest verified
    print(f"wrote {args.new} (format {checkpoint.FORMAT}, RNG states as tensors, SHA-256 "
          f"{checkpoint.state_digest(state)[:16]}...)")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flags.start_logging(args)
    return run_cli(lambda: upgrade(args))


if __name__ == "__main__":
    sys.exit(main())
