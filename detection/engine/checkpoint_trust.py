"""What a checkpoint must be to be trusted beyond its digest: finite weights, and optionally a
signature.

* **Finite weights.** ``nonfinite(state)`` names the weight tensors (``model``, ``ema``, or a
  bare state dict's) holding NaN or infinity. ``weights_file.save_atomic`` never writes such a
  checkpoint (the previous file stays) and ``weights_file.load`` refuses one.
* **Authenticity (optional).** With a secret in the environment variable ``KEY_ENV``
  (``TAXDET_CHECKPOINT_KEY``), every checkpoint written also carries ``hmac_sha256``: the
  HMAC-SHA256 of its digest under that key. With the key set, loading refuses a checkpoint
  without it or with a wrong one. Without the key, the plain SHA-256 digest still detects damage
  but not forgery (``docs/safety.md``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path
from typing import Any

import torch

from taxdet.core.errors import InputError

KEY_ENV = "TAXDET_CHECKPOINT_KEY"
HMAC_KEY = "hmac_sha256"
WEIGHT_KEYS = ("model", "ema")


def _key() -> bytes | None:
    key = os.environ.get(KEY_ENV, "")
    return key.encode() if key else None


def signature(digest: str) -> dict[str, str]:
    """``{HMAC_KEY: hex}`` when the key is set, else ``{}``."""
    key = _key()
    return {HMAC_KEY: hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()} if key else {}


def check_signature(digest: str, mac: Any, path: Path, error: type[InputError]) -> None:
    """With the key set: ``error`` unless ``mac`` is the HMAC of ``digest``."""
    key = _key()
    if key is None:
        return
    if mac is None:
        raise error(f"{path}: refused: not signed, and {KEY_ENV} is set (only checkpoints "
                    "written with that key are loaded)")
    want = hmac.new(key, digest.encode(), hashlib.sha256).hexdigest()
    if not isinstance(mac, str) or not hmac.compare_digest(mac, want):
        raise error(f"{path}: refused: its signature does not match {KEY_ENV} (written with "
                    "another key, or forged)")


def nonfinite(state: dict[str, Any]) -> list[str]:
    """Names of the floating-point weight tensors holding NaN or infinity (the ``model`` and
    ``ema`` weights of a checkpoint, or every tensor of a bare state dict)."""
    parts = {k: state[k] for k in WEIGHT_KEYS if isinstance(state.get(k), dict)}
    if not parts and not any(k in state for k in WEIGHT_KEYS):
        parts = {"": state}
    bad = []
    for part, weights in parts.items():
        for name, t in weights.items():
            if isinstance(t, torch.Tensor) and t.is_floating_point() and \
                    not bool(torch.isfinite(t).all()):
                bad.append(f"{part}.{name}" if part else str(name))
    return bad
