"""Checkpoints: written atomically, read without running code, checked against a digest, tied to
the taxonomy they were trained for.

A training checkpoint is a dict with ``model``, ``ema``, ``optimizer``, ``scheduler``,
``scaler``, ``state`` (``step``, ``epoch`` and the rest of the ``TrainState``), ``rng``
(``rng_state()``: tensors and plain numbers), ``config`` (the resolved TrainConfig as plain
data), ``taxonomies`` (``TaxonomySet.to_dict()``) and ``taxonomy_hash``.

Safety. Every file is read with ``torch.load(..., weights_only=True)``: only tensors and plain
containers and numbers are rebuilt, no pickled object and no code from the file ever runs. A file
that is not a zip archive as ``torch.save`` writes it (a plain pickle, the pre-1.6 torch format,
a truncated file, anything else) is refused before it is parsed. So ``save_atomic`` accepts only
tensors, ``dict``/``OrderedDict``/``list``/``tuple`` and ``str``/``bytes``/``int``/``float``/
``bool``/``None`` (a ``TypeError`` naming the key otherwise). Checkpoints of older versions held
the numpy and python RNG states pickled; they are refused with the command that converts them
once (``tools/upgrade_checkpoint.py OLD NEW --trust``, for trusted files only).

Integrity. ``save_atomic`` adds two keys to the dict it writes: ``checkpoint_format``
(``FORMAT``) and ``sha256``, the SHA-256 of ``state_digest(state)``: every key, number, string
and tensor (dtype, shape and raw bytes) of the state in order. ``load`` recomputes it and raises
``CheckpointError`` "checksum mismatch" naming the file when it differs, then returns the state
without these two keys. A file without a digest (a bare effdet or timm state dict, a file of
another tool) is accepted only where ``load(..., bare=True)`` says so (``--init-checkpoint``,
``model.pretrained_backbone``) and is still read with ``weights_only=True``; a checkpoint to
resume from or to predict with must carry its digest.
"""

from __future__ import annotations

import hashlib
import pickle
import random
import re
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

import supertax
from datasets.files import atomic_open
from supertax.errors import InputError

FORMAT = 2                      # 1: the pickled-RNG checkpoints of older versions (no digest)
FORMAT_KEY, DIGEST_KEY = "checkpoint_format", "sha256"
UPGRADE = "python tools/upgrade_checkpoint.py"


class CheckpointError(InputError):
    pass


class UnsafeCheckpointError(CheckpointError):
    """The file holds pickled objects that only an unsafe load (one that may run code) reads."""


# -- the digest ----------------------------------------------------------------------------------
def _feed(h, obj, where: str) -> None:
    """Add ``obj`` to the hash ``h``; ``TypeError`` naming ``where`` for a type that a
    ``weights_only`` load cannot rebuild (or this digest does not know)."""
    kind = type(obj)
    if kind in (torch.Tensor, torch.nn.Parameter):
        if obj.layout != torch.strided:
            raise TypeError(f"{where}: a {obj.layout} tensor; only dense tensors are stored")
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}:".encode())
        h.update(t.view(torch.uint8).numpy())
    elif kind in (dict, OrderedDict):
        h.update(f"D{len(obj)}:".encode())
        for key, value in obj.items():
            _feed(h, key, f"{where} key {key!r}")
            _feed(h, value, f"{where}[{key!r}]")
    elif kind in (list, tuple):
        h.update(f"{'L' if kind is list else 'U'}{len(obj)}:".encode())
        for i, value in enumerate(obj):
            _feed(h, value, f"{where}[{i}]")
    elif kind is str:
        data = obj.encode("utf-8", "surrogatepass")
        h.update(f"S{len(data)}:".encode() + data)
    elif kind is bytes:
        h.update(f"Y{len(obj)}:".encode() + obj)
    elif obj is None or kind is bool or kind is int:
        h.update(f"{kind.__name__[0]}{obj};".encode())
    elif kind is float:
        h.update(f"F{obj.hex()};".encode())
    else:
        raise TypeError(f"{where}: a {kind.__module__}.{kind.__qualname__}; a checkpoint holds "
                        "only tensors, dict/list/tuple and str/bytes/int/float/bool/None")


def state_digest(state: dict) -> str:
    """SHA-256 (hex) of every key, value and tensor byte of ``state``, in order."""
    h = hashlib.sha256()
    _feed(h, state, "checkpoint")
    return h.hexdigest()


# -- writing -------------------------------------------------------------------------------------
def save_atomic(state: dict, path: str | Path) -> None:
    """Write ``state`` with its digest (module docstring) to a temporary file ``.<name>.*.tmp``
    in the same folder, fsync, then rename over ``path``.

    A crash at any point leaves either the old file or the new one, never a broken one (the
    temporary file of a killed process is removed when the next run starts in that folder:
    ``datasets.files.remove_stale_temps``). ``TypeError`` if ``state`` holds a type a safe
    load cannot read.
    """
    if FORMAT_KEY in state or DIGEST_KEY in state:
        raise ValueError(f"a checkpoint state may not use the keys {FORMAT_KEY!r}, {DIGEST_KEY!r}")
    signed = {**state, FORMAT_KEY: FORMAT, DIGEST_KEY: state_digest(state)}
    with atomic_open(path, "wb") as f:
        torch.save(signed, f)


# -- reading -------------------------------------------------------------------------------------
def _unsafe_content(path: Path, exc: Exception) -> UnsafeCheckpointError:
    found = re.search(r"WeightsUnpickler error: (.*?)(?: was not an allowed| Please use|\n|$)",
                      str(exc))
    what = found.group(1).strip() if found else "objects other than tensors and plain data"
    return UnsafeCheckpointError(
        f"{path}: refused: it holds pickled Python objects ({what}), which could run code when "
        "loaded, so it is never loaded as it is. If it is a checkpoint written by an older "
        "version of this toolkit (pickled RNG state) and you trust this file, convert it once "
        f"with `{UPGRADE} {path} NEW.pt --trust` and use NEW.pt")


def _read(path: Path):
    """``torch.load(path, weights_only=True)`` on the CPU with every failure a
    ``CheckpointError`` naming the file."""
    if not path.is_file():
        raise CheckpointError(f"{path}: no such checkpoint")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path}: not a readable checkpoint (not a zip archive as torch.save "
                              "writes: truncated, or another kind of file; plain pickles are "
                              "never loaded)")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        if "Weights only load failed" in str(exc):
            raise _unsafe_content(path, exc) from None
        raise CheckpointError(f"{path}: not a readable checkpoint ({exc})") from None
    except Exception as exc:  # torch raises several types for damaged or foreign archives
        raise CheckpointError(f"{path}: not a readable checkpoint "
                              f"({type(exc).__name__}: {exc})") from None


def _verify(state: dict, path: Path) -> bool:
    """Check and strip the digest; False if the file has none."""
    if DIGEST_KEY not in state and FORMAT_KEY not in state:
        return False
    version = state.pop(FORMAT_KEY, None)
    stored = state.pop(DIGEST_KEY, None)
    if version != FORMAT:
        raise CheckpointError(f"{path}: checkpoint format {version!r} is not the one this "
                              f"version reads ({FORMAT}); was it written by a newer version?")
    try:
        actual = state_digest(state)
    except TypeError as exc:
        raise CheckpointError(f"{path}: checksum mismatch ({exc})") from None
    if actual != stored:
        raise CheckpointError(f"{path}: checksum mismatch: the content's SHA-256 is {actual[:16]}"
                              f"..., the file recorded {str(stored)[:16]}...: it was changed or "
                              "damaged after it was written")
    return True


def read(path: str | Path) -> tuple[dict, bool]:
    """``(state, whether it had a digest)``: the dict in the file, read on the CPU without
    running code from it, its digest checked and removed when it has one."""
    path = Path(path)
    state = _read(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a checkpoint "
                              "(a dict of weights and training state)")
    return state, _verify(state, path)


def load(path: str | Path, *, required: tuple[str, ...] = (), bare: bool = False) -> dict:
    """Read a checkpoint on the CPU without running code from it (module docstring).

    ``required``: keys it must hold (``"not a training checkpoint (missing [...])"``).
    ``bare``: also accept a dict without a digest (a plain state dict). Every problem is a
    ``CheckpointError`` naming the file.
    """
    state, signed = read(path)
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a training checkpoint (missing {missing})")
    if not signed and not bare:
        raise CheckpointError(f"{path}: no {DIGEST_KEY} digest: not a checkpoint written by this "
                              "version (tools/train.py stores one in every checkpoint); a file "
                              f"of an older version converts with `{UPGRADE} {path} NEW.pt`")
    return state


# -- taxonomy --------------------------------------------------------------------------------------
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
    try:
        old = supertax.TaxonomySet.from_dict(ckpt["taxonomies"])
        diffs = taxonomy_differences(old, taxset) or ["(hash differs)"]
    except (InputError, KeyError, TypeError, ValueError, AttributeError) as exc:
        diffs = [f"(its 'taxonomies' cannot be read: {type(exc).__name__}: {exc})"]
    raise CheckpointError(f"{path}: trained for taxonomy hash {ckpt.get('taxonomy_hash')}, "
                          f"but the loaded taxonomies hash to {taxset.hash}:\n  - "
                          + "\n  - ".join(diffs))


# -- random number generators --------------------------------------------------------------------
def rng_state() -> dict:
    """Every RNG's state as tensors and plain numbers (a ``weights_only`` load reads it)."""
    return plain_rng_state({
        "python": random.getstate(), "numpy": np.random.get_state(legacy=True),
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else []})


def set_rng_state(state: dict) -> None:
    """Restore what ``rng_state`` returned, bit for bit."""
    py, npy = state["python"], state["numpy"]
    random.setstate((py["version"], tuple(int(v) for v in py["state"].tolist()), py["gauss"]))
    np.random.set_state((npy["name"], npy["key"].numpy().astype(np.uint32), npy["pos"],
                         npy["has_gauss"], npy["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def plain_rng_state(old: dict) -> dict:
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
def weights_misfit(model: torch.nn.Module, weights) -> list[str]:
    """Why ``model.load_state_dict(weights, strict=True)`` would fail (empty if it fits): keys
    missing, unexpected or of another shape, a few named of each."""
    if not isinstance(weights, dict) or not all(
            isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in weights.items()):
        return [f"a {type(weights).__name__} that is not a state dict (names to tensors)"]
    wanted = model.state_dict()
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
