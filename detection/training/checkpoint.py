"""Checkpoints: written atomically, tied to the taxonomy they were trained for.

A checkpoint is a dict with ``model``, ``ema``, ``optimizer``, ``scheduler``,
``scaler``, ``state`` (``step``, ``epoch`` and the rest of the ``TrainState``), ``rng``,
``config`` (the resolved TrainConfig as plain data), ``taxonomies``
(``TaxonomySet.to_dict()``) and ``taxonomy_hash``.
"""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import numpy as np
import torch

import supertax
from supertax.errors import InputError


class CheckpointError(InputError):
    pass


def save_atomic(state: dict, path: str | Path) -> None:
    """Write to a temporary file in the same folder, fsync, then rename over ``path``.

    A crash at any point leaves either the old file or the new one, never a broken one.
    """
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load(path: str | Path) -> dict:
    """Read a checkpoint on the CPU; a clear error if it is missing or unreadable."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises several types for truncated / foreign files
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from exc


def taxonomy_differences(old: supertax.TaxonomySet, new: supertax.TaxonomySet) -> list[str]:
    """Human-readable differences between two resolved taxonomy sets (empty if equal)."""
    out = []
    if old.names != new.names:
        gone = [n for n in old.names if n not in new.names]
        added = [n for n in new.names if n not in old.names]
        out.append(f"classes: checkpoint has {old.names}, now {new.names}"
                   + (f"; removed {gone}" if gone else "") + (f"; added {added}" if added else ""))
    old_t, new_t = ({t.name: t.to_dict() for t in old.taxonomies},
                    {t.name: t.to_dict() for t in new.taxonomies})
    for name in sorted(set(old_t) | set(new_t)):
        if name not in new_t:
            out.append(f"taxonomy {name!r} is in the checkpoint but not loaded now")
        elif name not in old_t:
            out.append(f"taxonomy {name!r} is loaded now but not in the checkpoint")
        elif old_t[name] != new_t[name]:
            out.append(f"taxonomy {name!r} changed its labels or weights")
    if not out and old.super.to_dict() != new.super.to_dict():
        out.append("the super-taxonomy tree changed (parents or exhaustive markings)")
    return out


def check_taxonomy(ckpt: dict, taxset: supertax.TaxonomySet, path: str | Path) -> None:
    """Refuse a checkpoint trained for other classes, listing what differs."""
    if ckpt.get("taxonomy_hash") == taxset.hash:
        return
    old = supertax.TaxonomySet.from_dict(ckpt["taxonomies"])
    diffs = taxonomy_differences(old, taxset) or ["(hash differs)"]
    raise CheckpointError(f"{path}: trained for taxonomy hash {ckpt.get('taxonomy_hash')}, "
                          f"but the loaded taxonomies hash to {taxset.hash}:\n  - "
                          + "\n  - ".join(diffs))


def rng_state() -> dict:
    return {"python": random.getstate(), "numpy": np.random.get_state(),
            "torch": torch.get_rng_state(),
            "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []}


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
