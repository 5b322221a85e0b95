"""Anchor fit: how well the anchors can match a dataset's boxes, and anchors that match better.

The **best-possible recall** (BPR) is the share of ground-truth boxes whose best anchor has an
IoU of at least ``pos_iou`` (0.5, the labeler's positive threshold) in model-input pixels
(each image resized so its long side is ``image_size``, as the eval transform does). A box
below it trains only through the labeler's force match (its single best anchor), so a low BPR
means anchors too large, too small or of the wrong shape for the data; YOLO's autoanchor reports
the same number. ``search`` tries anchor scales and aspect-ratio sets and ranks them by BPR,
then by mean best IoU.

Shapes: G boxes, A anchors; boxes are x1y1x2y2.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass

import numpy as np
import torch

DEFAULT_ASPECTS = ((1.0, 1.0), (1.4, 0.7), (0.7, 1.4))  # effdet's (x, y) multipliers
SCALES = (1.0, 1.5, 2.0, 2.5, 3.0, 4.0)
BPR_WARN = 0.95  # train.py warns below this

# ``taxdet.detection.model.build.anchor_spec`` gives the ``AnchorSpec`` of a ``ModelConfig``.


@dataclass(frozen=True)
class AnchorSpec:
    """The anchor settings of ``ModelConfig`` that the fit varies."""

    anchor_scale: float = 4.0
    aspect_ratios: tuple[tuple[float, float], ...] = DEFAULT_ASPECTS
    num_scales: int = 3


@dataclass(frozen=True)
class FitResult:
    spec: AnchorSpec
    bpr: float            # share of boxes with a best anchor IoU >= pos_iou
    mean_best_iou: float  # mean over boxes of the best anchor IoU


def model_input_boxes(samples, image_size: int) -> torch.Tensor:
    """[G, 4] float32 x1y1x2y2 of every sample's boxes in model-input pixels."""
    parts = [np.asarray(s.boxes, np.float64).reshape(-1, 4) * (image_size / max(s.width, s.height))
             for s in samples]
    boxes = np.concatenate(parts) if parts else np.zeros((0, 4))
    return torch.as_tensor(boxes, dtype=torch.float32)


def anchor_shapes(spec: AnchorSpec, image_size: int, min_level: int = 3,
                  max_level: int = 7) -> torch.Tensor:
    """[S, 3] (stride, width, height) of each anchor shape, as effdet's generator makes them:
    ``anchor_scale * stride * 2 ** (octave / num_scales)`` times the aspect's (x, y)."""
    rows = []
    for level in range(min_level, max_level + 1):
        stride = image_size / math.ceil(image_size / 2 ** level)
        for octave in range(spec.num_scales):
            base = spec.anchor_scale * stride * 2 ** (octave / spec.num_scales)
            rows += [(stride, base * ax, base * ay) for ax, ay in spec.aspect_ratios]
    return torch.tensor(rows, dtype=torch.float64)


def _nearest_centre(x: torch.Tensor, stride: float, image_size: int) -> torch.Tensor:
    """The anchor centre (``stride / 2 + k * stride``, inside the image) nearest to ``x``."""
    last = math.ceil((image_size - stride / 2) / stride) - 1
    k = torch.round((x - stride / 2) / stride).clamp(0, last)
    return stride / 2 + k * stride


def best_iou(boxes: torch.Tensor, spec: AnchorSpec, image_size: int) -> torch.Tensor:
    """[G] the highest IoU of each box [G, 4] with any anchor of ``spec``.

    For a fixed anchor shape the IoU only falls as the centres move apart along either axis,
    so the best anchor of a shape is the one whose centre is nearest on each axis: G x S work
    instead of G x A (the tests check it against every anchor)."""
    boxes = boxes.double()
    if not len(boxes):
        return torch.zeros(0, dtype=torch.float64)
    cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
    area = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    best = torch.zeros(len(boxes), dtype=torch.float64)
    for stride, w, h in anchor_shapes(spec, image_size).tolist():
        ax, ay = _nearest_centre(cx, stride, image_size), _nearest_centre(cy, stride, image_size)
        iw = (torch.minimum(boxes[:, 2], ax + w / 2) - torch.maximum(boxes[:, 0], ax - w / 2))
        ih = (torch.minimum(boxes[:, 3], ay + h / 2) - torch.maximum(boxes[:, 1], ay - h / 2))
        inter = iw.clamp(min=0) * ih.clamp(min=0)
        best = torch.maximum(best, inter / (area + w * h - inter))
    return best


def evaluate_spec(spec: AnchorSpec, boxes: torch.Tensor, image_size: int,
                  pos_iou: float = 0.5) -> FitResult:
    ious = best_iou(boxes, spec, image_size)
    if not len(ious):
        return FitResult(spec, 1.0, 1.0)
    return FitResult(spec, float((ious >= pos_iou).float().mean()), float(ious.mean()))


def data_aspects(boxes: torch.Tensor, count: int = 3) -> tuple[tuple[float, float], ...]:
    """``count`` aspect multipliers (x, y) at evenly spaced quantiles of the boxes' log(w / h),
    each with x * y = 1 (anchor area kept)."""
    wh = (boxes[:, 2:] - boxes[:, :2]).clamp(min=1e-3)
    log_ratio = torch.log(wh[:, 0] / wh[:, 1])
    qs = torch.quantile(log_ratio, torch.linspace(0.5 / count, 1 - 0.5 / count, count))
    return tuple((round(float(torch.exp(q / 2)), 3), round(float(torch.exp(-q / 2)), 3))
                 for q in qs)


def search(boxes: torch.Tensor, image_size: int, pos_iou: float = 0.5,
           scales: tuple[float, ...] = SCALES) -> list[FitResult]:
    """Every scale x {effdet's aspects, the data's aspects}, best first."""
    aspect_sets = {DEFAULT_ASPECTS, data_aspects(boxes)} if len(boxes) else {DEFAULT_ASPECTS}
    results = [evaluate_spec(AnchorSpec(s, a), boxes, image_size, pos_iou)
               for s, a in itertools.product(scales, sorted(aspect_sets))]
    return sorted(results, key=lambda r: (-r.bpr, -r.mean_best_iou))


def describe(result: FitResult) -> str:
    s = result.spec
    aspects = ", ".join(f"({x:g}, {y:g})" for x, y in s.aspect_ratios)
    return (f"BPR {result.bpr:.3f}  mean best IoU {result.mean_best_iou:.3f}  "
            f"anchor_scale {s.anchor_scale:g}  num_scales {s.num_scales}  aspects {aspects}")


def config_snippet(spec: AnchorSpec) -> dict:
    """The ``model:`` section ``train.py --config`` accepts for ``spec``."""
    return {"model": {"anchor_scale": spec.anchor_scale,
                      "aspect_ratios": [list(a) for a in spec.aspect_ratios],
                      "num_scales": spec.num_scales}}
