"""Builders shared by the export tests (here and in tests/tools/test_export.py)."""

from __future__ import annotations

import numpy as np

from taxdet.detection.engine.checkpoint import save_atomic
from tests.factories import make_checkpoint

CLASS_PW = "module.class_net.predict.conv_pw.weight"
BOX_PW = "module.box_net.predict.conv_pw.weight"
IMAGE_SIZES = ((96, 160), (200, 120), (128, 128))  # (h, w): wide, tall, square


def make_confident_checkpoint(path, taxset) -> dict:
    """``make_checkpoint`` with the EMA heads' last convs scaled up: a fresh head's logits
    vary by ~5e-5 around the prior (-4.6), so every score is a near-tie and NMS order would
    hang on rounding. Scaled, logits spread by ~1 and box codes by ~0.1, like a trained
    model's."""
    state = make_checkpoint(path, taxset)
    state["ema"][CLASS_PW] = state["ema"][CLASS_PW] * 2e4
    state["ema"][BOX_PW] = state["ema"][BOX_PW] * 2e3
    save_atomic(state, path)
    return state


def sample_images(seed: int = 0) -> list[np.ndarray]:
    """[H, W, 3] uint8 RGB images of ``IMAGE_SIZES``: smooth gradients plus noise."""
    rng = np.random.default_rng(seed)
    out = []
    for h, w in IMAGE_SIZES:
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], -1)
        out.append(np.clip(base + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8))
    return out
