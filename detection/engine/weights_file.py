"""Weight files (checkpoints and bare state dicts): written atomically, read without running code,
checked against a digest.

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

Trust (``taxdet.detection.engine.checkpoint_trust``): weights holding NaN or infinity are never
written and never loaded; with ``TAXDET_CHECKPOINT_KEY`` set, checkpoints also carry an
``hmac_sha256`` of their digest, and loading refuses one without it or with a wrong one.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Any

import torch

from taxdet.core.errors import InputError, OutputError
from taxdet.core.files import atomic_open
from taxdet.detection.engine import checkpoint_trust as trust

FORMAT = 2                      # 1: the pickled-RNG checkpoints of older versions (no digest)
FORMAT_KEY, DIGEST_KEY = "checkpoint_format", "sha256"
UPGRADE = "python tools/upgrade_checkpoint.py"


class CheckpointError(InputError):
    pass


class UnsafeCheckpointError(CheckpointError):
    """The file holds pickled objects that only an unsafe load (one that may run code) reads."""


# -- the digest ----------------------------------------------------------------------------------
def _feed(h: hashlib._Hash, obj: Any, where: str) -> None:
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


def state_digest(state: dict[str, Any]) -> str:
    """SHA-256 (hex) of every key, value and tensor byte of ``state``, in order."""
    h = hashlib.sha256()
    _feed(h, state, "checkpoint")
    return h.hexdigest()


# -- writing -------------------------------------------------------------------------------------
def save_atomic(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` with its digest (module docstring) to a temporary file ``.<name>.*.tmp``
    in the same folder, fsync, then rename over ``path``.

    A crash at any point leaves either the old file or the new one, never a broken one (the
    temporary file of a killed process is removed when the next run starts in that folder:
    ``taxdet.core.files.remove_stale_temps``). ``TypeError`` if ``state`` holds a type a safe
    load cannot read; ``OutputError`` if the file cannot be written (a full disk).
    """
    if FORMAT_KEY in state or DIGEST_KEY in state or trust.HMAC_KEY in state:
        raise ValueError(f"a checkpoint state may not use the keys {FORMAT_KEY!r}, {DIGEST_KEY!r}, "
                         f"{trust.HMAC_KEY!r}")
    bad = trust.nonfinite(state)
    if bad:
        raise CheckpointError(f"{path}: not written: {len(bad)} weight tensor(s) hold NaN or "
                              f"infinity (e.g. {bad[:3]}); the training diverged (lower the "
                              "learning rate); the previous file, if any, stays as it was")
    digest = state_digest(state)
    signed = {**state, FORMAT_KEY: FORMAT, DIGEST_KEY: digest, **trust.signature(digest)}
    try:
        with atomic_open(path, "wb") as f:
            torch.save(signed, f)
    except RuntimeError as exc:  # torch's zip writer turns the file's OSError into this
        cause = exc.__context__
        if not isinstance(cause, OSError):
            raise
        raise OutputError(f"cannot write checkpoint {path}: {cause.strerror or cause} (the "
                          "previous file, if any, stays as it was)") from None


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


def _read(path: Path) -> Any:
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


def _verify(state: dict[str, Any], path: Path) -> bool:
    """Check and strip the digest; False if the file has none."""
    if DIGEST_KEY not in state and FORMAT_KEY not in state:
        return False
    version = state.pop(FORMAT_KEY, None)
    stored = state.pop(DIGEST_KEY, None)
    mac = state.pop(trust.HMAC_KEY, None)
    if version != FORMAT:
        older = isinstance(version, int) and not isinstance(version, bool) and version < FORMAT
        raise CheckpointError(
            f"{path}: checkpoint format {version!r} is not the one this version reads ({FORMAT}); "
            + (f"it was written by an older version: convert it once with `{UPGRADE} {path} "
               "NEW.pt`" if older else "was it written by a newer version?"))
    try:
        actual = state_digest(state)
    except TypeError as exc:
        raise CheckpointError(f"{path}: checksum mismatch ({exc})") from None
    if actual != stored:
        raise CheckpointError(f"{path}: checksum mismatch: the content's SHA-256 is {actual[:16]}"
                              f"..., the file recorded {str(stored)[:16]}...: it was changed or "
                              "damaged after it was written")
    trust.check_signature(actual, mac, path, CheckpointError)
    return True


def read(path: str | Path) -> tuple[dict[str, Any], bool]:
    """``(state, whether it had a digest)``: the dict in the file, read on the CPU without
    running code from it, its digest checked and removed when it has one."""
    path = Path(path)
    state = _read(path)
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: holds a {type(state).__name__}, not a checkpoint "
                              "(a dict of weights and training state)")
    return state, _verify(state, path)


def load(path: str | Path, *, required: tuple[str, ...] = (), bare: bool = False
         ) -> dict[str, Any]:
    """Read a checkpoint on the CPU without running code from it (module docstring).

    ``required``: keys it must hold (``"not a training checkpoint (missing [...])"``).
    ``bare``: also accept a dict without a digest (a plain state dict). Every problem is a
    ``CheckpointError`` naming the file.
    """
    state, signed = read(path)
    bad = trust.nonfinite(state)
    if bad:
        raise CheckpointError(f"{path}: refused: {len(bad)} weight tensor(s) hold NaN or "
                              f"infinity (e.g. {bad[:3]}): the run that wrote it diverged")
    missing = [k for k in required if k not in state]
    if missing:
        raise CheckpointError(f"{path}: not a training checkpoint (missing {missing})")
    if not signed and not bare:
        raise CheckpointError(f"{path}: no {DIGEST_KEY} digest: not a checkpoint written by this "
                              "version (tools/train.py stores one in every checkpoint); a file "
                              f"of an older version converts with `{UPGRADE} {path} NEW.pt`")
    return state
