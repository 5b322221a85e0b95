"""Benches around the EfficientDet network: anchors, labeling, loss and post-processing stay
outside it.

* ``TrainBench``: batch -> anchor targets -> network -> masked focal loss (a named dict).
* ``PredictBench``: images -> detections in super-taxonomy columns, in original image pixels.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
from effdet.anchors import Anchors, decode_box_outputs
from effdet.bench import _post_process
from torchvision.ops import batched_nms

from taxdet.detection.anchors.labeler import AnchorLabeler, AnchorTargets, LabelerConfig
from taxdet.detection.model.drawable_boxes import (
    DroppedBoxes,
    clamp_size_codes,
    degenerate_in_top,
    drawable_torch,
)
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
    counts per taxonomy accumulate in ``coverage [T, 6, K]`` (``COVERAGE_KINDS``).
    """

    def __init__(self, model: nn.Module, ancestors: torch.Tensor, labeler_cfg: LabelerConfig,
                 loss_cfg: DetectionLossConfig, taxonomy_mask: bool = True,
                 pseudo: PseudoLabelConfig | None = None, num_taxonomies: int = 0,
                 coarse_parents: torch.Tensor | None = None):
        super().__init__()
        self.model = model
        self.anchors = Anchors.from_config(model.config)
        self.labeler = AnchorLabeler(self.anchors, labeler_cfg)
        self.register_buffer("ancestors", torch.as_tensor(ancestors, dtype=torch.bool),
                             persistent=False)
        self.loss_cfg = loss_cfg
        self.pseudo = pseudo
        # [K] per-class pseudo-positive thresholds (pseudo.class_precision), set by the trainer
        self.register_buffer("pseudo_thresholds", None, persistent=False)
        # [K] bool: the box classes whose children the coarse_children term trains (None: all)
        self.register_buffer("coarse_parents", None if coarse_parents is None else
                             torch.as_tensor(coarse_parents, dtype=torch.bool), persistent=False)
        self.taxonomy_mask = taxonomy_mask
        self.num_classes = model.config.num_classes
        self.per_taxonomy = isinstance(model, PerTaxonomyHeads)
        # this rank's counts: a plain tensor, not a buffer, so that DDP's buffer broadcast
        # does not replace them with rank 0's (the trainer sums the ranks')
        self.coverage = torch.zeros(num_taxonomies, len(COVERAGE_KINDS), self.num_classes)

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
            coverage=self.coverage.shape[0] > 0, coarse_parents=self.coarse_parents,
            pseudo_thresholds=self.pseudo_thresholds)
        if "coverage" in out:
            counts = out.pop("coverage")
            self.coverage = self.coverage.to(counts.device)
            self.coverage.index_add_(0, batch["taxonomy"].to(counts.device), counts)
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
    classes [N] columns; ``dropped``: degenerate boxes that would have been among them
    (``taxdet.detection.model.drawable_boxes``)."""

    boxes: torch.Tensor
    scores: torch.Tensor
    classes: torch.Tensor
    dropped: int = 0


class PredictBench(nn.Module):
    """Model + decoding + per-class NMS (effdet's post-processing), in super-taxonomy columns.

    Boxes follow ``taxdet.detection.model.drawable_boxes``: size regressions clamped before
    ``exp``, boxes clipped to the image, degenerate ones dropped before NMS; ``dropped`` sums
    the dropped boxes over every call (``dropped = DroppedBoxes()`` restarts it).

    ``hierarchy``: None, or the [K, K] ``ancestors`` matrix for hierarchy-consistent decoding
    (each parent column scored as the max over its descendants before top-k and NMS;
    ``taxdet.detection.model.hierarchy_scores``)."""

    iou_threshold = 0.5

    def __init__(self, model: nn.Module, max_det_per_image: int = 100,
                 score_threshold: float = 0.001, hierarchy: torch.Tensor | None = None):
        super().__init__()
        self.model = model
        self.anchors = Anchors.from_config(model.config)
        self.max_det = max_det_per_image
        self.score_threshold = score_threshold
        self.hierarchy = hierarchy
        self.dropped = DroppedBoxes()
        # the decoding's name, as outputs record it (``set_hierarchy_decoding`` keeps it)
        self.decoding = "own" if hierarchy is None else "hierarchy"

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
        anchors = self.anchors.boxes.to(scale.device)
        nms = NmsConfig(self.max_det, self.score_threshold, self.iou_threshold)
        dets = [image_detections(cls_top[i, :, 0], box_top[i], anchors[indices[i]], classes[i],
                                 scale[i], orig_size[i], nms)
                for i in range(scale.shape[0])]
        for d in dets:
            self.dropped.add(d.dropped)
        return dets


@dataclass(frozen=True)
class NmsConfig:
    """What follows box decoding: per-class NMS at ``iou_threshold``, the ``max_det`` best
    kept, those above ``score_threshold`` returned (effdet's settings)."""

    max_det: int = 100
    score_threshold: float = 0.001
    iou_threshold: float = 0.5


def image_detections(logits: torch.Tensor, codes: torch.Tensor, anchors: torch.Tensor,
                     classes: torch.Tensor, scale: torch.Tensor, orig_size: torch.Tensor,
                     nms: NmsConfig = NmsConfig()) -> Detections:
    """One image's top-k candidates -> its detections. ``logits`` [N], ``codes`` [N, 4]
    (ty, tx, th, tw), ``anchors`` [N, 4] y1 x1 y2 x2 input pixels, ``classes`` [N];
    ``scale`` []: input pixels per original pixel; ``orig_size`` [2] (h, w). Boxes follow
    ``taxdet.detection.model.drawable_boxes`` (degenerate ones dropped before NMS)."""
    boxes = decode_box_outputs(clamp_size_codes(codes.float()), anchors, output_xyxy=True)
    boxes, ok = drawable_torch(boxes * (1.0 / scale.float()), *orig_size.tolist())
    scores = logits.float().sigmoid()
    bad_scores = scores[~ok].cpu().numpy()
    boxes, scores, classes = boxes[ok], scores[ok], classes[ok]
    kept = batched_nms(boxes, scores, classes, nms.iou_threshold)[:nms.max_det]
    kept = kept[scores[kept] > nms.score_threshold]
    dropped = degenerate_in_top(scores[kept].cpu().numpy(), bad_scores, nms.max_det,
                                nms.score_threshold)
    return Detections(boxes[kept], scores[kept], classes[kept], dropped)


def to_coco_results(dets: list[Detections], image_ids: list[int]) -> list[dict]:
    """COCO results (category_id = column + 1, bbox xywh) for a batch of detections."""
    out = []
    for d, image_id in zip(dets, image_ids):
        for box, score, cls in zip(d.boxes.tolist(), d.scores.tolist(), d.classes.tolist()):
            out.append({"image_id": int(image_id), "category_id": cls + 1,
                        "bbox": rounded_xywh(box), "score": round(score, 5)})
    return out


def rounded_xywh(box: list[float]) -> list[float]:
    """x1 y1 x2 y2 -> [x, y, w, h] at 0.01 px, rounded outwards: a box inside the image and at
    least 1 px wide and high stays so."""
    x1, y1 = (math.floor(v * 100) / 100 for v in box[:2])
    x2, y2 = (math.ceil(v * 100) / 100 for v in box[2:])
    return [x1, y1, round(x2 - x1, 2), round(y2 - y1, 2)]
