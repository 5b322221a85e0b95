"""Old checkpoints into the current format (``tools/upgrade_checkpoint.py``): read safely when
possible, with the unsafe pickle load only for a file the user vouched for (``--trust``), then
RNG states as tensors and plain numbers so the file loads with ``weights_only=True``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from taxdet.detection.engine import checkpoint
from taxdet.detection.engine.checkpoint import CheckpointError


def trusted_load(path: Path) -> dict[str, Any]:
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


def read_old(path: Path, trust: bool) -> dict[str, Any]:
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


def convert(state: dict[str, Any], source: Path) -> dict[str, Any]:
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
