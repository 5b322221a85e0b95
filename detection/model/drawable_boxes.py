"""Boxes that can be drawn: the one rule every detection path applies to decoded boxes.

A young model's box head can output huge size regressions; ``exp`` turns them into boxes of
1e10 px or ``inf`` that clip to zero-area boxes at the image edges (score 1.00, drawn nowhere).
Every path that makes detections (``PredictBench`` for predict.py, evaluate.py, training
validation and the linter; the exported graph and its NumPy post-processing; the service)
applies, in this order:

1. ``clamp_size_codes``: the log-size regressions (th, tw) are clamped to at most
   ``MAX_SIZE_CODE`` = log(1000 / 16) before ``exp`` (torchvision's
   ``BoxCoder.bbox_xform_clip``): a box is at most 62.5 times its anchor;
2. boxes, in original image pixels, are clipped to the image;
3. a box that was not finite before clipping, or is under ``MIN_BOX_SIDE`` (1 px) wide or high
   after it, is dropped before NMS, so valid boxes fill the image's detections.

``drawable_torch`` (tensors) and ``drawable_numpy`` (arrays) are steps 2-3 for the two
representations; ``clamp_size_codes`` works on both. ``degenerate_in_top`` counts, per image,
the dropped boxes that would have been among its detections; ``DroppedBoxes`` sums them over a
run, for one warning line (``warn_dropped``) and the output's ``info`` (``info``).

Shapes: N candidate boxes, x1 y1 x2 y2. This module imports NumPy only (tensors are handled
through their methods), so the NumPy post-processing stays torch-free.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

MAX_SIZE_CODE = math.log(1000.0 / 16)  # torchvision BoxCoder.bbox_xform_clip
MIN_BOX_SIDE = 1.0  # pixels of the original image
INFO_KEY = "degenerate_boxes_dropped"
RULE = (f"non-finite, or under {MIN_BOX_SIDE:g} px wide or high after clipping to the image; "
        f"size regressions clamped at log(1000/16)")


def clamp_size_codes(codes):
    """codes [..., 4] (ty, tx, th, tw), a tensor or an array -> the same with th and tw at most
    ``MAX_SIZE_CODE`` (NaN stays NaN; its box is dropped later)."""
    limit = [math.inf, math.inf, MAX_SIZE_CODE, MAX_SIZE_CODE]
    if isinstance(codes, np.ndarray):
        return np.minimum(codes, np.asarray(limit, codes.dtype))
    return codes.minimum(codes.new_tensor(limit))


def drawable_torch(boxes: torch.Tensor, height, width) -> tuple[torch.Tensor, torch.Tensor]:
    """boxes [N, 4] x1 y1 x2 y2 original pixels -> (boxes clipped to the ``width`` x ``height``
    image [N, 4], keep [N] bool: finite before clipping, sides >= ``MIN_BOX_SIDE`` after)."""
    finite = (boxes.abs() < math.inf).all(-1)
    limit = boxes.new_tensor([float(width), float(height)] * 2)
    clipped = boxes.clamp(min=0).minimum(limit)
    keep = finite & ((clipped[:, 2:] - clipped[:, :2]) >= MIN_BOX_SIDE).all(-1)
    return clipped, keep


def drawable_numpy(boxes: np.ndarray, height, width) -> tuple[np.ndarray, np.ndarray]:
    """``drawable_torch`` for a NumPy array [N, 4] (same rule, same dtype back)."""
    boxes = np.asarray(boxes)
    finite = np.isfinite(boxes).all(-1)
    limit = np.asarray([width, height] * 2, boxes.dtype)
    with np.errstate(invalid="ignore"):
        clipped = np.minimum(np.maximum(boxes, boxes.dtype.type(0)), limit)
        keep = finite & ((clipped[:, 2:] - clipped[:, :2]) >= MIN_BOX_SIDE).all(-1)
    return clipped, keep


def degenerate_in_top(kept_scores: np.ndarray, dropped_scores: np.ndarray, max_det: int,
                      score_threshold: float) -> int:
    """How many of one image's dropped boxes would have been among its ``max_det`` detections:
    the dropped scores above ``score_threshold`` ranked with the kept detections' scores
    (kept first on ties), as if NMS suppressed none of them (zero-area boxes never suppress
    each other; the count is at most a little high). ``kept_scores`` [D], ``dropped_scores``
    [N] (NaN scores: none)."""
    dropped = np.asarray(dropped_scores, np.float32)
    with np.errstate(invalid="ignore"):
        dropped = dropped[dropped > score_threshold]
    if not dropped.size:
        return 0
    scores = np.concatenate([np.asarray(kept_scores, np.float32), dropped])
    is_dropped = np.arange(scores.size) >= scores.size - dropped.size
    top = np.argsort(-scores, kind="stable")[:max_det]
    return int(is_dropped[top].sum())


@dataclass
class DroppedBoxes:
    """Degenerate boxes dropped over a run: ``boxes`` in total, on ``images`` images."""

    boxes: int = 0
    images: int = 0

    def add(self, count: int) -> None:
        """One image's count (``degenerate_in_top``)."""
        self.boxes += int(count)
        self.images += int(count > 0)

    def merge(self, other: DroppedBoxes) -> None:
        self.boxes += other.boxes
        self.images += other.images

    def info(self) -> dict:
        """``{INFO_KEY: {"boxes", "images", "rule"}}`` for an output's ``info``."""
        return {INFO_KEY: {"boxes": self.boxes, "images": self.images, "rule": RULE}}


def warn_dropped(dropped: DroppedBoxes, where: str, logger: logging.Logger) -> None:
    """One warning line when ``dropped`` has boxes; ``where``: what was predicted."""
    if dropped.boxes:
        logger.warning(f"{where}: dropped {dropped.boxes} degenerate boxes on {dropped.images} "
                       f"images ({RULE}); the box head's regressions are extreme, typical of a "
                       "young checkpoint")
