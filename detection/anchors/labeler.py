"""Batched anchor labeling: ground-truth boxes -> per-anchor class / box targets, ignore band.

Each anchor takes the ground-truth box it overlaps most (IoU) and becomes

* **positive** (class = that box's column) if the IoU is ≥ ``pos_iou``, or if it is the best
  anchor of some box (force match, on by default: every box gets at least one anchor);
* **negative** (``BACKGROUND``) if the IoU is < ``neg_iou``;
* ``IGNORE`` otherwise (the band ``neg_iou ≤ IoU < pos_iou``), and also when it is not
  positive and at least ``ignore_ioa`` of its own area lies inside an ignore / crowd region.

An ignore region never removes a positive. Positives get effdet's box encoding of their box
and the box's weight; everything else gets zero box targets and weight 0.

Parity with effdet: with ``pos_iou = neg_iou = 0.5`` and no ignore regions, the targets equal
``effdet.anchors.AnchorLabeler(anchors, K, 0.5).batch_label_anchors`` (flattened level by
level) element for element, tie-breaking included, because the float32 arithmetic and the
first-index ``max``/``argmax`` rules are the same:

* an anchor with equal IoU to several boxes takes the lowest box row (padding rows excluded);
* a box whose best IoU is shared by several anchors force-matches the lowest anchor index;
* when several boxes force-match the same anchor, the lowest box row wins; the other boxes
  keep only their threshold matches (possibly none);
* a force match overrides a threshold match of the same anchor to another box, even one with
  a higher IoU;
* a box that overlaps no anchor at all (IoU 0 everywhere: zero area, or outside the image)
  force-matches anchor 0, as in effdet. Drop such boxes before labeling.

Vectorised over the batch, on any device. The [B, G, A] IoU matrix is never built whole:
anchors go in blocks of whole feature-map rows (``LabelerConfig.block_elements``,
``block_anchors``), and a block only computes the boxes whose y-range reaches it (the others
have IoU 0 there).
"""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from taxdet.core.targets import BACKGROUND, IGNORE, PADDING
from taxdet.detection.anchors.grid import AnchorBlock, AnchorGrid
from taxdet.detection.anchors.labeler_config import LabelerConfig


@dataclass
class AnchorTargets:
    """Labeler output; anchors flat in effdet's order (level by level, within a level (h, w, k)).

    cls_targets: [B, A] int64 — column, BACKGROUND or IGNORE.
    box_targets: [B, A, 4] float32 — effdet's (ty, tx, th, tw) for positives, 0 elsewhere.
    box_weights: [B, A] float32 — weight of the matched box for positives, 0 elsewhere.
    num_positives: [B] float32.
    """

    cls_targets: torch.Tensor
    box_targets: torch.Tensor
    box_weights: torch.Tensor
    num_positives: torch.Tensor

    def to(self, device: torch.device | str) -> AnchorTargets:
        return AnchorTargets(self.cls_targets.to(device), self.box_targets.to(device),
                             self.box_weights.to(device), self.num_positives.to(device))


class AnchorLabeler(nn.Module):
    """Labels effdet anchors for a whole batch; no parameters.

    ``AnchorLabeler(effdet.anchors.Anchors.from_config(model_config), LabelerConfig())``.
    Anchor buffers follow ``.to(device)``; inputs on another device are labeled there with a
    per-call copy of the anchors, so move the labeler once to label on the training device.
    """

    def __init__(self, anchors, config: LabelerConfig | None = None) -> None:
        super().__init__()
        self.config = config or LabelerConfig()
        self.grid = AnchorGrid(anchors)

    @property
    def num_anchors(self) -> int:
        return self.grid.num_anchors

    @torch.no_grad()
    def forward(self, boxes: torch.Tensor, classes: torch.Tensor,
                box_weights: torch.Tensor | None = None,
                ignore: torch.Tensor | None = None) -> AnchorTargets:
        """boxes [B, G, 4] x1y1x2y2, classes [B, G] int64 (PADDING rows are no box),
        box_weights [B, G] (None: all 1), ignore [B, R, 4] x1y1x2y2 regions (zero rows are
        padding) -> AnchorTargets. Raises ValueError naming the first malformed row.
        """
        _check_inputs(boxes, classes, box_weights, ignore)
        grid = self.grid.on(boxes.device)
        if box_weights is None:
            box_weights = torch.ones(classes.shape, device=boxes.device)
        if boxes.shape[1] == 0:  # one padding row keeps the gathers well-defined
            boxes = boxes.new_zeros(boxes.shape[0], 1, 4)
            classes = classes.new_full((classes.shape[0], 1), PADDING)
            box_weights = box_weights.new_zeros(classes.shape)
        valid = classes != PADDING
        yxyx = torch.where(valid[..., None], boxes.to(torch.float32)[..., [1, 0, 3, 2]], 0.0)
        positive, matched, negative = self._match(grid, yxyx, valid)
        if ignore is not None and ignore.shape[1] > 0:
            negative &= ~self._covered(grid, ignore.to(torch.float32)[..., [1, 0, 3, 2]])
        return _targets(grid, yxyx, classes, box_weights, positive, matched, negative)

    def _match(self, grid: AnchorGrid, yxyx: torch.Tensor, valid: torch.Tensor):
        """-> positive [B, A] bool, matched box row [B, A] int64 (used where positive),
        negative [B, A] bool (IoU < neg_iou and not positive)."""
        per_block = self.config.anchors_per_block(yxyx.shape[0] * yxyx.shape[1])
        best_iou, matched, box_anchor = _iou_reductions(grid, yxyx, valid, per_block)
        positive = best_iou >= self.config.pos_iou
        if self.config.force_match:
            forced_box = _force_matches(box_anchor, valid, grid.num_anchors)
            forced = forced_box >= 0
            matched = torch.where(forced, forced_box, matched)
            positive |= forced
        negative = (best_iou < self.config.neg_iou) & ~positive
        return positive, matched, negative

    def _covered(self, grid: AnchorGrid, regions: torch.Tensor) -> torch.Tensor:
        """regions [B, R, 4] y1x1y2x2 -> [B, A] bool: a region holds ≥ ignore_ioa of the anchor."""
        per_block = self.config.anchors_per_block(regions.shape[0] * regions.shape[1])
        covered = []
        for block in grid.blocks(per_block):
            inside = grid.intersection(regions, block).div_(grid.area[block.start:block.stop])
            covered.append((inside >= self.config.ignore_ioa).any(dim=1))
        return torch.cat(covered, dim=1)


def _targets(grid: AnchorGrid, yxyx: torch.Tensor, classes: torch.Tensor,
             box_weights: torch.Tensor, positive: torch.Tensor, matched: torch.Tensor,
             negative: torch.Tensor) -> AnchorTargets:
    """Targets written for the (few) positive anchors only; the rest is BACKGROUND / IGNORE / 0."""
    image, anchor = positive.nonzero(as_tuple=True)
    row = matched[image, anchor]
    cls = torch.where(negative, BACKGROUND, IGNORE)
    cls[image, anchor] = classes[image, row].to(torch.int64)
    box_targets = yxyx.new_zeros((*positive.shape, 4))
    box_targets[image, anchor] = grid.encode(yxyx[image, row], anchor)
    weights = yxyx.new_zeros(positive.shape)
    weights[image, anchor] = box_weights[image, row].to(torch.float32)
    return AnchorTargets(cls, box_targets, weights, positive.sum(1).to(torch.float32))


def _iou_reductions(grid: AnchorGrid, yxyx: torch.Tensor, valid: torch.Tensor,
                    anchors_per_block: int):
    """IoU of every box with every anchor, reduced block by block, with effdet's arithmetic.

    yxyx [B, G, 4], valid [B, G] -> best IoU per anchor [B, A] float32; its box row [B, A]
    int64 (lowest row on ties; arbitrary where the best IoU is 0); best anchor per box [B, G]
    int64 (lowest flat index on ties; anchor 0 if the box overlaps none, like effdet's argmax).
    """
    b, g = yxyx.shape[:2]
    y1, x1, y2, x2 = yxyx.unbind(-1)
    area = (y2 - y1) * (x2 - x1)
    anchor_iou, anchor_box = [], []
    box_iou = yxyx.new_zeros((b, g))  # strict ">" below: IoU 0 everywhere keeps anchor 0
    box_anchor = torch.zeros((b, g), dtype=torch.int64, device=yxyx.device)
    for block in grid.blocks(anchors_per_block):
        rows = _rows_reaching(y1, y2, valid, block)
        if rows.shape[1] == 0:
            zeros = torch.zeros((b, block.stop - block.start), device=yxyx.device)
            anchor_iou.append(zeros)
            anchor_box.append(zeros.long())
            continue
        boxes = yxyx.gather(1, rows[..., None].expand(-1, -1, 4))
        iou = _block_iou(grid, boxes, area.gather(1, rows), block)
        value, box = iou.max(dim=1)
        anchor_iou.append(value)
        anchor_box.append(rows.gather(1, box))
        value, anchor = iou.max(dim=2)
        current = box_iou.gather(1, rows)
        better = value > current  # strict: an earlier block keeps a tie, as argmax over all does
        box_iou.scatter_(1, rows, torch.where(better, value, current))
        best = torch.where(better, anchor + block.start, box_anchor.gather(1, rows))
        box_anchor.scatter_(1, rows, best)
    return torch.cat(anchor_iou, dim=1), torch.cat(anchor_box, dim=1), box_anchor


def _rows_reaching(y1: torch.Tensor, y2: torch.Tensor, valid: torch.Tensor,
                   block: AnchorBlock) -> torch.Tensor:
    """[B, G'] box rows, in increasing order, led by every valid box whose y-range overlaps the
    block's anchors (G' = most such boxes in one image; other images are filled with other rows,
    which is harmless: their IoU with the block is 0)."""
    reach = (y2 > block.y_lo) & (y1 < block.y_hi) & valid
    count = int(reach.sum(1).max())
    return torch.argsort((~reach).to(torch.uint8), dim=1, stable=True)[:, :count]


def _block_iou(grid: AnchorGrid, yxyx: torch.Tensor, area: torch.Tensor,
               block: AnchorBlock) -> torch.Tensor:
    """Boxes [B, N, 4] with areas [B, N] -> IoU with the block's anchors [B, N, n] (effdet's)."""
    iou = grid.intersection(yxyx, block)
    union = torch.add(area[..., None], grid.area[block.start:block.stop]).sub_(iou)
    return iou.div_(union)  # union > 0 (anchor areas are > 0), so inter 0 gives 0 as in effdet


def _force_matches(box_anchor: torch.Tensor, valid: torch.Tensor, num_anchors: int) -> torch.Tensor:
    """Best anchor per box [B, G] -> [B, A] int64: lowest valid row that chose the anchor, or -1."""
    b, g = box_anchor.shape
    rows = torch.arange(g, device=box_anchor.device).expand(b, g)
    target = torch.where(valid, box_anchor, num_anchors)  # padding rows land in a spare column
    forced = torch.full((b, num_anchors + 1), g, dtype=torch.int64, device=box_anchor.device)
    forced.scatter_reduce_(1, target, rows, reduce="amin")
    forced = forced[:, :num_anchors]
    return torch.where(forced < g, forced, -1)


def _check_inputs(boxes: torch.Tensor, classes: torch.Tensor, box_weights: torch.Tensor | None,
                  ignore: torch.Tensor | None) -> None:
    """Raise ValueError on wrong shapes, or naming the batch image and row of a malformed box."""
    if boxes.dim() != 3 or boxes.shape[-1] != 4:
        raise ValueError(f"boxes must be [B, G, 4], got {tuple(boxes.shape)}")
    if classes.shape != boxes.shape[:2] or classes.dtype.is_floating_point:
        raise ValueError(f"classes must be an integer [B, G] = {tuple(boxes.shape[:2])} tensor, "
                         f"got {classes.dtype} {tuple(classes.shape)}")
    if box_weights is not None and box_weights.shape != classes.shape:
        raise ValueError(f"box_weights must be [B, G] = {tuple(classes.shape)}, "
                         f"got {tuple(box_weights.shape)}")
    if ignore is not None and (ignore.dim() != 3 or ignore.shape[0] != boxes.shape[0]
                               or ignore.shape[-1] != 4):
        raise ValueError(f"ignore must be [B, R, 4] with B = {boxes.shape[0]}, "
                         f"got {tuple(ignore.shape)}")
    valid = classes != PADDING
    bad = valid & ((classes < 0) | _malformed(boxes))
    if bool(bad.any()):
        image, row = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"batch image {image}, box row {row}: class {int(classes[image, row])}, "
                         f"box {boxes[image, row].tolist()} (need class >= 0 or "
                         f"PADDING={PADDING}, and finite x1 <= x2, y1 <= y2)")
    if ignore is not None and bool(_malformed(ignore).any()):
        image, row = (int(i) for i in _malformed(ignore).nonzero()[0])
        raise ValueError(f"batch image {image}, ignore region row {row}: "
                         f"{ignore[image, row].tolist()} (need finite x1 <= x2, y1 <= y2; "
                         "padding rows are all zero)")


def _malformed(boxes: torch.Tensor) -> torch.Tensor:
    """[B, N, 4] x1y1x2y2 -> [B, N] bool: not finite, or x2 < x1, or y2 < y1."""
    ordered = (boxes[..., 2] >= boxes[..., 0]) & (boxes[..., 3] >= boxes[..., 1])
    return ~(torch.isfinite(boxes).all(-1) & ordered)
