"""Training checkpoints: tied to the taxonomy they were trained for, with exact RNG state.

A training checkpoint is a dict with ``model``, ``ema``, ``optimizer``, ``scheduler``,
``scaler``, ``state`` (``step``, ``epoch`` and the rest of the ``TrainState``), ``rng``
(``rng_state()``: tensors and plain numbers), ``config`` (the resolved config as plain
data), ``taxonomies`` (``TaxonomySet.to_dict()``) and ``taxonomy_hash`` (and ``task`` for a
classifier's). Files are written and read by ``taxdet.detection.engine.weights_file`` (atomic,
``weights_only=True``, SHA-256 digest); its names are re-exported here.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

import taxdet.supertax as supertax
from taxdet.core.errors import InputError
from taxdet.detection.engine.config_sections import Sections
from taxdet.detection.engine.weights_file import (
    DIGEST_KEY,
    FORMAT,
    FORMAT_KEY,
    UPGRADE,
    CheckpointError,
    UnsafeCheckpointError,
    load,
    read,
    save_atomic,
    state_digest,
)

__all__ = [  # the weight-file names re-exported (module docstring), then this module's own
    "DIGEST_KEY", "FORMAT", "FORMAT_KEY", "UPGRADE", "CheckpointError", "UnsafeCheckpointError",
    "load", "read", "save_atomic", "state_digest",
    "RESUME_KEYS", "resumed_config", "taxonomy_differences", "check_taxonomy", "rng_state",
    "set_rng_state", "plain_rng_state", "weights_misfit"]

# what a checkpoint must hold to continue a run exactly (``TrainerBase.checkpoint_state``)
RESUME_KEYS = ("model", "optimizer", "scheduler", "scaler", "state", "rng", "config",
               "taxonomies", "taxonomy_hash")


def resumed_config(path: str | Path, config_cls: type[Sections]) -> dict[str, Any]:
    """The config tree (``config_cls.to_dict()`` form, e.g. the detector's ``TrainConfig``) of
    the run that the checkpoint ``path`` continues: its own config, with ``run.output`` the
    checkpoint's folder, ``run.resume`` the checkpoint, and no ``init_checkpoint`` or
    ``overwrite`` (the weights come from the checkpoint). ``CheckpointError`` naming the file
    when it is no training checkpoint or its config is not one this version reads."""
    ckpt = load(path, required=RESUME_KEYS)
    if not isinstance(ckpt["config"], dict):
        raise CheckpointError(f"{path}: its 'config' is not a mapping")
    try:
        tree: dict[str, Any] = config_cls.from_dict(ckpt["config"],
                                                    where=f"{path}: its config").to_dict()
    except InputError as exc:
        raise CheckpointError(f"{exc} (options given beside --resume cannot mend a checkpoint's "
                              "config; start a new run with --init-checkpoint)") from None
    tree["run"].update(output=str(Path(path).parent), resume=str(path), init_checkpoint=None,
                       overwrite=False)
    return tree


# -- taxonomy --------------------------------------------------------------------------------------
def taxonomy_differences(old: supertax.TaxonomySet, new: supertax.TaxonomySet) -> list[str]:
    """Human-readable differences between two resolved taxonomy sets (empty if equal)."""
    out: list[str] = []
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


def check_taxonomy(ckpt: dict[str, Any], taxset: supertax.TaxonomySet, path: str | Path,
                   hint: str = "") -> None:
    """Refuse a checkpoint trained for other taxonomies, listing what differs (then ``hint``)."""
    if ckpt.get("taxonomy_hash") == taxset.hash:
        return
    try:
        old = supertax.TaxonomySet.from_dict(ckpt["taxonomies"])
        diffs = taxonomy_differences(old, taxset) or ["(hash differs)"]
    except (InputError, KeyError, TypeError, ValueError, AttributeError) as exc:
        diffs = [f"(its 'taxonomies' cannot be read: {type(exc).__name__}: {exc})"]
    raise CheckpointError(f"{path}: trained for taxonomy hash {ckpt.get('taxonomy_hash')}, "
                          f"but the loaded taxonomies hash to {taxset.hash}:\n  - "
                          + "\n  - ".join(diffs) + f"\n{hint}" * bool(hint))


# -- random number generators --------------------------------------------------------------------
def rng_state() -> dict[str, Any]:
    """Every RNG's state as tensors and plain numbers (a ``weights_only`` load reads it)."""
    return plain_rng_state({
        "python": random.getstate(), "numpy": np.random.get_state(legacy=True),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []})


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` returned, bit for bit."""
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    np.random.set_state((npy["name"], npy["key"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def plain_rng_state(old: dict[str, Any]) -> dict[str, Any]:
    """``random.getstate()`` and ``np.random.get_state()`` tuples (as older versions stored them)
    as tensors and plain numbers; parts already in that form are kept as they are."""
    py, npy = old["python"], old["numpy"]
    out = dict(old)
    if isinstance(py, tuple):
        version, internal, gauss = py
        out["python"] = {"version": int(version),
                         "state": torch.tensor([int(v) for v in internal], dtype=torch.int64),
                         "gauss": None if gauss is None else float(gauss)}
    if isinstance(npy, tuple):
        name, key, pos, has_gauss, cached = npy
        out["numpy"] = {"name": str(name),
                        "key": torch.from_numpy(np.asarray(key).astype(np.int64)),
                        "pos": int(pos), "has_gauss": int(has_gauss),
                        "cached_gaussian": float(cached)}
    return out


# -- weights ---------------------------------------------------------------------------------------
def weights_misfit(model: torch.nn.Module | dict[str, torch.Tensor], weights: object
                   ) -> list[str]:
    """Why ``model.load_state_dict(weights, strict=True)`` would fail (empty if it fits): keys
    missing, unexpected or of another shape, a few named of each. ``model`` may also be the
    state dict it would have."""
    if not isinstance(weights, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        return [f"a {type(weights).__name__} that is not a state dict (names to tensors)"]
    wanted = model.state_dict() if isinstance(model, torch.nn.Module) else model
    missing = [k for k in wanted if k not in weights]
    unexpected = [k for k in weights if k not in wanted]
    shapes = [f"{k} {list(weights[k].shape)} (model: {list(v.shape)})"
              for k, v in wanted.items() if k in weights and weights[k].shape != v.shape]
    out = []
    for what, keys in (("missing", missing), ("unexpected", unexpected),
                       ("of another shape", shapes)):
        if keys:
            out.append(f"{len(keys)} of {len(wanted)} tensors {what}, e.g. {keys[:3]}"
                       if what != "unexpected" else f"{len(keys)} unexpected, e.g. {keys[:3]}")
    return out
