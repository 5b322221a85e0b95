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

import torch

from taxdet.core.errors import OutputError, run_cli
from taxdet.core.files import check_outputs
from taxdet.detection.engine import checkpoint
from taxdet.detection.engine.checkpoint import CheckpointError
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
        raise CheckpointError(f"{old}: no such checkpoint")
    if new.resolve() == old.resolve():
        raise OutputError(f"{new}: is OLD itself; write the converted checkpoint to a new path")
    if new.exists() or new.is_symlink():
        raise OutputError(f"{new}: already exists; give a path that does not exist yet")
    check_outputs({"NEW": new}, [old], tool="upgrade_checkpoint")


def trusted_load(path: Path) -> dict:
    """The unsafe load, for a file the user vouched for with --trust."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # anything torch or the pickle raises for a foreign file
        raise CheckpointError(f"{path}: not a readable checkpoint "
                              f"({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a checkpoint dict")
    for key in (checkpoint.FORMAT_KEY, checkpoint.DIGEST_KEY):
        state.pop(key, None)
    return state


def read_old(path: Path, trust: bool) -> dict:
    """OLD's state: safely when possible, with the unsafe load only under --trust."""
    try:
        return checkpoint.read(path)[0]
    except checkpoint.UnsafeCheckpointError as exc:
        if not trust:
            raise CheckpointError(
                f"{path}: holds pickled Python objects, and loading it could run code stored in "
                "it. Only if you trust where it came from (e.g. a checkpoint you trained with an "
                "older version), run again with --trust") from exc
    return trusted_load(path)


def convert(state: dict, source: Path) -> dict:
    """RNG states as tensors and plain numbers; everything else must already be plain."""
    if isinstance(state.get("rng"), dict):
        try:
            state = {**state, "rng": checkpoint.plain_rng_state(state["rng"])}
        except (KeyError, TypeError, ValueError) as exc:
            raise CheckpointError(f"{source}: its 'rng' is not an RNG state this tool knows "
                                  f"({type(exc).__name__}: {exc})") from None
    try:
        checkpoint.state_digest(state)
    except TypeError as exc:
        raise CheckpointError(f"{source}: cannot convert: {exc}") from None
    return state


def upgrade(args: argparse.Namespace) -> int:
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
