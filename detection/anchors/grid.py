"""Anchor geometry for batched labeling: effdet's anchors as separable per-level grids.

effdet's anchors (``effdet.anchors.Anchors.boxes`` [A, 4], y1x1y2x2) are laid out level by
level, and within a level in (h, w, anchor) order. On a level, the y-interval of an anchor
depends only on (h, anchor) and its x-interval only on (w, anchor). ``AnchorGrid`` keeps these
intervals, so the intersection of G boxes with a block of anchor rows is the outer product of
a [B, G, h, 1, k] height overlap and a [B, G, 1, W, k] width overlap instead of elementwise
min/max/clamp passes over all [B, G, A] pairs. The arithmetic per pair is effdet's
(``region_similarity_calculator.iou`` and ``FasterRcnnBoxCoder.encode``), so values are equal.
"""
from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Iterator

import torch
from torch import nn

# effdet's FasterRcnnBoxCoder eps, added to box and anchor sizes before dividing / taking logs.
BOX_CODER_EPS = 1e-7


@dataclass(frozen=True)
class AnchorBlock:
    """A contiguous block of anchors: rows ``row0:row1`` of one pyramid level.

    ``start:stop`` is the block's range in the flat anchor order; the block holds
    ``(row1 - row0) * width * per_location`` anchors, all within ``y_lo <= y <= y_hi``.
    """

    level: int
    row0: int
    row1: int
    start: int
    stop: int
    y_lo: float
    y_hi: float


@dataclass(frozen=True)
class _Level:
    start: int        # first flat anchor index of the level
    height: int
    width: int
    per_location: int
    row_offset: int   # offset of this level's [H * k] rows in the concatenated row buffers
    col_offset: int   # offset of this level's [W * k] columns in the concatenated column buffers


class AnchorGrid(nn.Module):
    """effdet anchors [A, 4] (y1x1y2x2) as per-level separable intervals; no parameters.

    Buffers (non-persistent, they follow ``.to(device)``): ``boxes`` [A, 4], ``area`` [A],
    ``anchor_frame`` [4, A] (y centre, x centre, h + eps, w + eps as effdet's box coder uses
    them), and the concatenated level intervals ``row_lo``/``row_hi`` (y1/y2 per (h, anchor))
    and ``col_lo``/``col_hi`` (x1/x2 per (w, anchor)).

    Raises TypeError for anything but an ``Anchors``-like object (a bare [A, 4] tensor lacks
    the level layout), ValueError if the anchors are not a separable grid (effdet's always are;
    the check guards against hand-made or edited anchors).
    """

    def __init__(self, anchors) -> None:
        super().__init__()
        if not hasattr(anchors, "feat_sizes"):
            raise TypeError("AnchorGrid needs an effdet.anchors.Anchors object (its levels and "
                            f"feature sizes), not {type(anchors).__name__}; pass "
                            "Anchors.from_config(model_config) itself, not its .boxes")
        boxes = anchors.boxes.detach().to(torch.float32).cpu()
        self.levels, rows, cols = _split_levels(anchors, boxes)
        # per level: lowest y1 and highest y2 of each anchor row (python floats: no device syncs)
        self._row_spans = [(r[..., 0].amin(1).tolist(), r[..., 1].amax(1).tolist()) for r in rows]
        row = torch.cat([r.reshape(-1, 2) for r in rows])
        col = torch.cat([c.reshape(-1, 2) for c in cols])
        for name, value in (("row_lo", row[:, 0]), ("row_hi", row[:, 1]),
                            ("col_lo", col[:, 0]), ("col_hi", col[:, 1]), ("boxes", boxes)):
            self.register_buffer(name, value.contiguous(), persistent=False)
        y1, x1, y2, x2 = boxes.unbind(1)
        area = (y2 - y1) * (x2 - x1)
        if not bool((area > 0).all()):
            raise ValueError("every anchor must have a positive area")
        self.register_buffer("area", area, persistent=False)
        yc, xc, h, w = center_size(boxes)
        frame = [yc, xc, h + BOX_CODER_EPS, w + BOX_CODER_EPS]  # effdet pads anchor sizes too
        self.register_buffer("anchor_frame", torch.stack(frame), persistent=False)

    @property
    def num_anchors(self) -> int:
        return self.boxes.shape[0]

    def on(self, device: torch.device) -> AnchorGrid:
        """This grid if it is on ``device``, else a copy moved there."""
        return self if self.boxes.device == device else copy.deepcopy(self).to(device)

    def blocks(self, anchors_per_block: int) -> Iterator[AnchorBlock]:
        """Blocks of whole anchor rows, at most ``anchors_per_block`` anchors (≥ 1 row) each."""
        for index, lv in enumerate(self.levels):
            row_size = lv.width * lv.per_location
            step = max(1, anchors_per_block // row_size)
            lows, highs = self._row_spans[index]
            for row0 in range(0, lv.height, step):
                row1 = min(lv.height, row0 + step)
                yield AnchorBlock(index, row0, row1,
                                  lv.start + row0 * row_size, lv.start + row1 * row_size,
                                  min(lows[row0:row1]), max(highs[row0:row1]))

    def intersection(self, boxes: torch.Tensor, block: AnchorBlock) -> torch.Tensor:
        """Intersection areas of boxes with the block's anchors.

        boxes: [B, N, 4] y1x1y2x2 -> [B, N, n] for the block's n anchors (flat anchor order).
        """
        lv = self.levels[block.level]
        k = lv.per_location
        rows = slice(lv.row_offset + block.row0 * k, lv.row_offset + block.row1 * k)
        cols = slice(lv.col_offset, lv.col_offset + lv.width * k)
        heights = _overlap(boxes[..., 0], boxes[..., 2], self.row_lo[rows], self.row_hi[rows])
        widths = _overlap(boxes[..., 1], boxes[..., 3], self.col_lo[cols], self.col_hi[cols])
        b, n = boxes.shape[:2]
        inter = heights.view(b, n, -1, 1, k) * widths.view(b, n, 1, lv.width, k)
        return inter.view(b, n, -1)

    def encode(self, boxes: torch.Tensor, anchor: torch.Tensor) -> torch.Tensor:
        """effdet's FasterRcnnBoxCoder encoding (no scale factors) of boxes against anchors.

        boxes: [N, 4] y1x1y2x2, anchor: [N] anchor indices -> [N, 4] (ty, tx, th, tw).
        """
        yc_a, xc_a, h_a, w_a = self.anchor_frame[:, anchor]
        yc, xc, h, w = center_size(boxes)
        h = h + BOX_CODER_EPS
        w = w + BOX_CODER_EPS
        return torch.stack([(yc - yc_a) / h_a, (xc - xc_a) / w_a,
                            torch.log(h / h_a), torch.log(w / w_a)], dim=-1)


def center_size(boxes: torch.Tensor) -> list[torch.Tensor]:
    """[y centre, x centre, h, w] of [..., 4] y1x1y2x2 boxes, in effdet's order of operations."""
    y1, x1, y2, x2 = boxes.unbind(-1)
    h = y2 - y1
    w = x2 - x1
    return [y1 + h / 2.0, x1 + w / 2.0, h, w]


def _split_levels(anchors, boxes: torch.Tensor):
    """-> (levels, per-level [H, k, 2] y-intervals, per-level [W, k, 2] x-intervals)."""
    per_location = anchors.get_anchors_per_location()
    levels, rows, cols = [], [], []
    start = row_offset = col_offset = 0
    for level in range(anchors.min_level, anchors.max_level + 1):
        height, width = anchors.feat_sizes[level]
        stop = start + height * width * per_location
        grid = boxes[start:stop].reshape(height, width, per_location, 4)
        rows.append(_separable(grid[:, :, :, 0::2], dim=1, level=level))  # y1, y2
        cols.append(_separable(grid[:, :, :, 1::2], dim=0, level=level))  # x1, x2
        levels.append(_Level(start, height, width, per_location, row_offset, col_offset))
        row_offset += height * per_location
        col_offset += width * per_location
        start = stop
    if start != boxes.shape[0]:
        raise ValueError(f"anchor levels cover {start} anchors, anchors.boxes has {boxes.shape[0]}")
    return tuple(levels), rows, cols


def _overlap(lo: torch.Tensor, hi: torch.Tensor, anchor_lo: torch.Tensor,
             anchor_hi: torch.Tensor) -> torch.Tensor:
    """1-D overlaps: box intervals [B, N] x anchor intervals [n] -> [B, N, n] (effdet's formula)."""
    return torch.clamp(torch.min(hi[..., None], anchor_hi) - torch.max(lo[..., None], anchor_lo),
                       min=0)


def _separable(coords: torch.Tensor, dim: int, level: int) -> torch.Tensor:
    """[H, W, k, 2] interval coords that must not vary along ``dim`` -> first slice along it."""
    first = coords.narrow(dim, 0, 1)
    if not torch.equal(coords, first.expand_as(coords)):
        axis = "y" if dim == 1 else "x"
        raise ValueError(f"anchors of level {level} are not a separable grid: "
                         f"{axis} varies along dim {dim}")
    return first.squeeze(dim)
