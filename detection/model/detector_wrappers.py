"""Benches around the EfficientDet network: anchors, labeling, loss and post-processing stay
outside it.

* ``TrainBench``: batch -> anchor targets -> network -> masked focal loss (a named dict).
* ``PredictBench``: images -> detections in super-taxonomy columns, in original image pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn as nn
from effdet.anchors import Anchors
from effdet.bench import _batch_detection, _post_process

from taxdet.detection.anchors.labeler import AnchorLabeler, AnchorTargets, LabelerConfig
from taxdet.detection.model.hierarchy_scores import hierarchy_max_levels
from taxdet.detection.model.multihead import PerTaxonomyHeads
from taxdet.losses import DetectionLossConfig, levels_to_B_A_K, masked_detection_loss
from taxdet.losses.cell_plan import COVERAGE_KINDS
from taxdet.losses.loss_config import PseudoLabelConfig


class TrainBench(nn.Module):
    """Model + anchor labeler + Taxonomy Loss Masking (+ pseudo-labels from a teacher).

    ``forward(batch, teacher=None)`` takes the collated batch dict (see
    ``taxdet.datasets.torch_dataset``) and returns ``{"loss", "class_loss", "box_loss"}``. If the
    batch already holds anchor targets (labeled in data-loader workers), they are used as they
    are. With a ``teacher`` (the EMA model) and a ``pseudo`` config, the masked cells the
    teacher is confident about become pseudo-labels (``taxdet.losses.pseudo_labels``). Supervision
    counts per taxonomy accumulate in ``coverage [T, 4, K]`` (``COVERAGE_KINDS``).
    """

    def __init__(self, model: nn.Module, ancestors: torch.Tensor, labeler_cfg: LabelerConfig,
                 loss_cfg: DetectionLossConfig, taxonomy_mask: bool = True,
                 pseudo: PseudoLabelConfig | None = None, num_taxonomies: int = 0):
        super().__init__()
        self.model = model
        self.anchors = Anchors.from_config(model.config)
        self.labeler = AnchorLabeler(self.anchors, labeler_cfg)
        self.register_buffer("ancestors", torch.as_tensor(ancestors, dtype=torch.bool),
                             persistent=False)
        self.loss_cfg = loss_cfg
        self.pseudo = pseudo
        self.taxonomy_mask = taxonomy_mask
        self.num_classes = model.config.num_classes
        self.per_taxonomy = isinstance(model, PerTaxonomyHeads)
        self.register_buffer("coverage", torch.zeros(num_taxonomies, len(COVERAGE_KINDS),
                                                     self.num_classes), persistent=False)

    def targets(self, batch: dict) -> AnchorTargets:
        """Anchor targets for the batch: precomputed ones, or labeled here on the batch's device."""
        if "cls_targets" in batch:
            return AnchorTargets(batch["cls_targets"], batch["box_targets"],
                                 batch["anchor_box_weights"], batch["num_positives"])
        return self.labeler(batch["boxes"], batch["classes"], batch["box_weights"], batch["ignore"])

    def forward(self, batch: dict, teacher: nn.Module | None = None) -> dict[str, torch.Tensor]:
        t = self.targets(batch)
        if self.per_taxonomy:
            cls_out, box_out = self.model(batch["image"], batch["taxonomy"])
        else:
            cls_out, box_out = self.model(batch["image"])
        # a head only learns its taxonomy's classes
        use_mask = self.taxonomy_mask or self.per_taxonomy
        class_mask = batch["label_mask"] if use_mask else None
        probs = (teacher_class_probs(teacher, batch["image"], self.num_classes)
                 if teacher is not None and use_mask else None)
        out = masked_detection_loss(
            levels_to_B_A_K(cls_out, self.num_classes), levels_to_B_A_K(box_out, 4),
            t.cls_targets, t.box_targets, t.num_positives, self.loss_cfg,
            class_mask=class_mask, ancestors=self.ancestors, box_weights=t.box_weights,
            teacher_probs=probs, pseudo=self.pseudo if probs is not None else None,
            coverage=self.coverage.shape[0] > 0)
        if "coverage" in out:
            self.coverage.index_add_(0, batch["taxonomy"], out.pop("coverage"))
        return out


@torch.no_grad()
def teacher_class_probs(teacher: nn.Module, images: torch.Tensor, num_classes: int
                        ) -> torch.Tensor:
    """The teacher's class scores ``[B, A, K]`` (sigmoid), from backbone, FPN and class head
    only: the box head is not run."""
    features = teacher.fpn(teacher.backbone(images))
    return levels_to_B_A_K(teacher.class_net(features), num_classes).float().sigmoid()


@dataclass
class Detections:
    """Detections of one image: boxes [N, 4] x1y1x2y2 original pixels, scores [N],
    classes [N] columns."""

    boxes: torch.Tensor
    scores: torch.Tensor
    classes: torch.Tensor


class PredictBench(nn.Module):
    """Model + decoding + per-class NMS (effdet's post-processing), in super-taxonomy columns.

    ``hierarchy``: None, or the [K, K] ``ancestors`` matrix for hierarchy-consistent decoding
    (each parent column scored as the max over its descendants before top-k and NMS;
    ``taxdet.detection.model.hierarchy_scores``)."""

    def __init__(self, model: nn.Module, max_det_per_image: int = 100,
                 score_threshold: float = 0.001, hierarchy: torch.Tensor | None = None):
        super().__init__()
        self.model = model
        self.anchors = Anchors.from_config(model.config)
        self.max_det = max_det_per_image
        self.score_threshold = score_threshold
        self.hierarchy = hierarchy

    @torch.no_grad()
    def forward(self, images: torch.Tensor, scale: torch.Tensor, orig_size: torch.Tensor
                ) -> list[Detections]:
        """images [B, 3, H, W]; scale [B] (input pixels per original pixel);
        orig_size [B, 2] (h, w)."""
        cls_out, box_out = self.model(images)
        return self.decode(cls_out, box_out, scale, orig_size, self.hierarchy)

    @torch.no_grad()
    def decode(self, cls_out: list[torch.Tensor], box_out: list[torch.Tensor],
               scale: torch.Tensor, orig_size: torch.Tensor,
               hierarchy: torch.Tensor | None = None) -> list[Detections]:
        """Detections from the network's per-level outputs (``[B, nA*K, H, W]``,
        ``[B, nA*4, H, W]``): optional hierarchy max, top-k, box decoding, per-class NMS."""
        cfg = self.model.config
        if hierarchy is not None:
            cls_out = hierarchy_max_levels(cls_out, hierarchy, cfg.num_classes)
        points = min(cfg.max_detection_points, self.anchors.boxes.shape[0] * cfg.num_classes)
        cls_top, box_top, indices, classes = _post_process(
            cls_out, box_out, num_levels=cfg.num_levels, num_classes=cfg.num_classes,
            max_detection_points=points)
        img_scale = (1.0 / scale).float()
        img_size = orig_size.flip(-1).float()  # effdet clips with (w, h) in original pixels
        dets = _batch_detection(scale.shape[0], cls_top, box_top,
                                self.anchors.boxes.to(scale.device), indices, classes,
                                img_scale, img_size, max_det_per_image=self.max_det)
        return [_unpack(d, self.score_threshold) for d in dets]


def _unpack(det: torch.Tensor, score_threshold: float) -> Detections:
    """effdet rows [x1, y1, x2, y2, score, class+1] (zero rows pad) -> ``Detections``."""
    keep = det[:, 4] > score_threshold
    det = det[keep]
    return Detections(det[:, :4], det[:, 4], det[:, 5].long() - 1)


def to_coco_results(dets: list[Detections], image_ids: list[int]) -> list[dict]:
    """COCO results (category_id = column + 1, bbox xywh) for a batch of detections."""
    out = []
    for d, image_id in zip(dets, image_ids):
        xywh = torch.cat([d.boxes[:, :2], d.boxes[:, 2:] - d.boxes[:, :2]], dim=1).tolist()
        for box, score, cls in zip(xywh, d.scores.tolist(), d.classes.tolist()):
            out.append({"image_id": int(image_id), "category_id": cls + 1,
                        "bbox": [round(v, 2) for v in box], "score": round(score, 5)})
    return out
