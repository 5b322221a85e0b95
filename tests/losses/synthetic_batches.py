"""Realistic random EfficientDet loss inputs, for tests and ``benchmarks/bench_loss.py``.

Targets come from effdet's own ``AnchorLabeler`` on random ground-truth boxes (so positives,
box encodings and ``num_positives`` are what effdet training sees); background anchors whose
best IoU falls in the band [0.4, 0.5) are then marked IGNORE, as our labeler does. Head
outputs are random around effdet's prior (class bias -4.6, i.e. p = 0.01).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from effdet.anchors import AnchorLabeler, Anchors
from torch import Tensor
from torchvision.ops import box_iou

from taxdet.core.targets import BACKGROUND, IGNORE
from taxdet.losses.detection_masking import levels_to_B_A_K

ASPECT_RATIOS = [(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]   # effdet's defaults: 3 scales x 3 ratios


@dataclass
class LossBatch:
    """Per-level effdet-layout inputs (``effdet.loss.loss_fn`` arguments) and flat views.

    Per level: ``cls_outputs [B, nA*K, H, W]``, ``box_outputs [B, nA*4, H, W]`` (leaf tensors
    with requires_grad), ``cls_targets [B, H, W, nA] int64``, ``box_targets [B, H, W, nA*4]``;
    ``num_positives [B]`` float32; ``num_classes`` K.
    """

    cls_outputs: list[Tensor]
    box_outputs: list[Tensor]
    cls_targets: list[Tensor]
    box_targets: list[Tensor]
    num_positives: Tensor
    num_classes: int

    def flat_targets(self) -> tuple[Tensor, Tensor]:
        """``(cls_targets [B, A] int64, box_targets [B, A, 4])`` in effdet's anchor order."""
        B = self.num_positives.shape[0]
        return (torch.cat([t.reshape(B, -1) for t in self.cls_targets], dim=1),
                torch.cat([t.reshape(B, -1, 4) for t in self.box_targets], dim=1))

    def flat_outputs(self) -> tuple[Tensor, Tensor]:
        """``(cls_logits [B, A, K], box_pred [B, A, 4])``, differentiable w.r.t. the levels."""
        return (levels_to_B_A_K(self.cls_outputs, self.num_classes),
                levels_to_B_A_K(self.box_outputs, 4))


def _random_boxes(n: int, image_size: int, gen: torch.Generator) -> Tensor:
    """``[n, 4]`` yxyx boxes with sides between 4 % and 60 % of the image."""
    size = (torch.rand(n, 2, generator=gen) * 0.56 + 0.04) * image_size
    corner = torch.rand(n, 2, generator=gen) * (image_size - size)
    return torch.cat([corner, corner + size], dim=1)


def _label_image(labeler: AnchorLabeler, boxes: Tensor, classes: Tensor):
    """effdet targets for one image, plus IGNORE for background anchors with IoU in [0.4, 0.5)."""
    cls_levels, box_levels, num_pos = labeler.label_anchors(boxes, classes)
    best_iou = box_iou(labeler.anchors.boxes, boxes).max(dim=1).values
    band = (best_iou >= 0.4) & (best_iou < 0.5)
    start = 0
    for level in cls_levels:
        n = level.numel()
        level[(level == BACKGROUND) & band[start:start + n].view_as(level)] = IGNORE
        start += n
    return cls_levels, box_levels, num_pos


def effdet_loss_batch(batch_size: int = 2, image_size: int = 128, num_classes: int = 7,
                      boxes_per_image: int = 6, seed: int = 0, min_level: int = 3,
                      max_level: int = 7) -> LossBatch:
    """A ``LossBatch`` at EfficientDet anchor settings (3 scales x 3 ratios, anchor scale 4)."""
    gen = torch.Generator().manual_seed(seed)
    anchors = Anchors(min_level, max_level, 3, ASPECT_RATIOS, 4.0, (image_size, image_size))
    labeler = AnchorLabeler(anchors, num_classes, match_threshold=0.5)
    per_image = []
    for _ in range(batch_size):
        boxes = _random_boxes(boxes_per_image, image_size, gen)
        classes = torch.randint(1, num_classes + 1, (boxes_per_image,), generator=gen)
        per_image.append(_label_image(labeler, boxes, classes))      # effdet classes are 1-based
    cls_targets = [torch.stack(lv) for lv in zip(*(p[0] for p in per_image))]
    box_targets = [torch.stack(lv) for lv in zip(*(p[1] for p in per_image))]
    num_positives = torch.stack([p[2] for p in per_image]).float()
    nA = len(ASPECT_RATIOS) * 3

    def head(channels: int, t: Tensor, bias: float, scale: float) -> Tensor:
        out = torch.randn(batch_size, channels, t.shape[1], t.shape[2], generator=gen)
        return (out * scale + bias).requires_grad_()

    cls_outputs = [head(nA * num_classes, t, -4.6, 2.0) for t in cls_targets]
    box_outputs = [head(nA * 4, t, 0.0, 0.2) for t in cls_targets]
    return LossBatch(cls_outputs, box_outputs, cls_targets, box_targets, num_positives,
                     num_classes)
