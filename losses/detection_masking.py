"""EfficientDet detection loss with Taxonomy Loss Masking (fused API and effdet drop-in).

``masked_detection_loss`` works on flat anchors (``[B, A, ...]`` in effdet's anchor order,
the labeler's output); ``detection_loss`` takes effdet's per-level lists and returns what
``effdet.loss.loss_fn`` returns, equal to it when the masking extras are None.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from taxdet.core.targets import IGNORE
from taxdet.losses.ancestor_targets import as_ancestors
from taxdet.losses.box import box_regression_loss
from taxdet.losses.cell_plan import plan_cells
from taxdet.losses.coarse_children import planned_coarse_sum
from taxdet.losses.fused_focal import planned_focal_sum
from taxdet.losses.loss_config import DetectionLossConfig, PseudoLabelConfig

LossDict = dict[str, Tensor]   # keys "loss" (total), "class_loss", "box_loss"


def levels_to_B_A_K(per_level: list[Tensor], C: int) -> Tensor:
    """Reshape-only: per-level head outputs ``[B, nA*C, H, W]`` -> one ``[B, A, C]`` tensor.

    Anchor order is effdet's: level by level, within a level (h, w, anchor). One copy (the
    cat of ``[B, H*W, nA*C]`` views); its backward is views only.
    """
    flat = []
    for level, out in enumerate(per_level):
        if out.dim() != 4 or out.shape[1] % C or out.shape[1] != per_level[0].shape[1]:
            raise ValueError(f"level {level}: expected [B, nA*{C}, H, W] with the same nA on "
                             f"every level, got {list(out.shape)}")
        flat.append(out.permute(0, 2, 3, 1).flatten(1, 2))       # view [B, H*W, nA*C]
    return torch.cat(flat, dim=1).view(per_level[0].shape[0], -1, C)


def _check_inputs(cls_logits: Tensor, box_pred: Tensor, cls_targets: Tensor,
                  box_targets: Tensor, num_positives: Tensor, class_mask: Tensor | None,
                  box_weights: Tensor | None) -> None:
    """Raise ``ValueError`` naming the argument whose shape, dtype or values are wrong."""
    if cls_logits.dim() != 3:
        raise ValueError(f"cls_logits: expected [B, A, K], got {list(cls_logits.shape)}")
    B, A, K = cls_logits.shape
    expected = {"box_pred": (box_pred, [B, A, 4]), "cls_targets": (cls_targets, [B, A]),
                "box_targets": (box_targets, [B, A, 4]), "num_positives": (num_positives, [B]),
                "class_mask": (class_mask, [B, K]), "box_weights": (box_weights, [B, A])}
    for name, (t, shape) in expected.items():
        if t is not None and list(t.shape) != shape:
            raise ValueError(f"{name}: expected shape {shape} (B, A, K = {B}, {A}, {K}), "
                             f"got {list(t.shape)}")
    if cls_targets.dtype != torch.int64:
        raise ValueError(f"cls_targets: expected int64, got {cls_targets.dtype}")
    if class_mask is not None and class_mask.dtype != torch.bool:
        raise ValueError(f"class_mask: expected bool, got {class_mask.dtype}")
    bad = (cls_targets < IGNORE) | (cls_targets >= K)
    if bad.any():
        b, a = (int(i) for i in bad.nonzero()[0])
        raise ValueError(f"cls_targets[{b}, {a}] = {int(cls_targets[b, a])}: expected a column "
                         f"in [0, {K}) or BACKGROUND (-1) or IGNORE (-2); "
                         f"{int(bad.sum())} bad value(s)")


def masked_detection_loss(cls_logits: Tensor, box_pred: Tensor, cls_targets: Tensor,
                          box_targets: Tensor, num_positives: Tensor, cfg: DetectionLossConfig,
                          *, class_mask: Tensor | None = None,
                          ancestors: Tensor | np.ndarray | None = None,
                          box_weights: Tensor | None = None,
                          teacher_probs: Tensor | None = None,
                          pseudo: PseudoLabelConfig | None = None,
                          coverage: bool = False,
                          coarse_parents: Tensor | None = None,
                          pseudo_thresholds: Tensor | None = None) -> LossDict:
    """Masked focal class loss + weighted Huber box loss on flat anchors; a named dict.

    ``cls_logits [B, A, K]``, ``box_pred [B, A, 4]`` (any float dtype; the math is float32
    with autocast off), ``cls_targets [B, A] int64`` (column, BACKGROUND or IGNORE),
    ``box_targets [B, A, 4]``, ``num_positives [B]``. Extras: ``class_mask [B, K] bool``
    (False = the sample's taxonomy does not label that class: those cells train only where
    ``cfg.certain_cells`` makes them certain, see ``taxdet.losses.certain_cells``),
    ``ancestors [K, K] bool`` (a class-j positive is positive for every column of row j),
    ``box_weights [B, A]`` (scales each anchor's box loss), ``teacher_probs [B, A, K]`` with
    ``pseudo`` (pseudo-labels in the cells still masked; ``pseudo_thresholds [K]``, optional,
    per-class positive thresholds). With ``cfg.coarse_children``
    (``taxdet.losses.coarse_children``), a box's masked children also train as a set, a term
    of the class loss; ``coarse_parents [K] bool`` limits it to those box classes (None: every
    class with children). Both losses are divided by ``num_positives.sum() + 1`` as in
    effdet. Returns ``{"loss", "class_loss", "box_loss"}``, plus ``"coverage" [B, 6, K]``
    (``taxdet.losses.cell_plan.COVERAGE_KINDS``) if asked for.
    """
    _check_inputs(cls_logits, box_pred, cls_targets, box_targets, num_positives, class_mask,
                  box_weights)
    if ancestors is not None:
        ancestors = as_ancestors(ancestors, cls_logits.shape[-1], cls_logits.device)
    plan = plan_cells(cls_targets, cls_logits.shape[-1], class_mask, ancestors,
                      cfg.certain_cells, teacher_probs, pseudo, coverage, pseudo_thresholds)
    with torch.autocast(device_type=cls_logits.device.type, enabled=False):
        normalizer = (num_positives.sum() + 1.0).float()
        smoothing = 0.0 if cfg.legacy_focal else cfg.label_smoothing
        class_sum = planned_focal_sum(cls_logits, plan, cfg.alpha, cfg.gamma, smoothing)
        if cfg.coarse_children != "none" and ancestors is not None:
            class_sum = class_sum + cfg.coarse_children_weight * planned_coarse_sum(
                cls_logits, cls_targets, plan, ancestors, cfg.alpha, cfg.gamma, coarse_parents)
        class_loss = class_sum / normalizer
        box_loss = box_regression_loss(box_pred, box_targets, normalizer, cfg.delta, box_weights)
        total = class_loss + cfg.box_loss_weight * box_loss
    out = {"loss": total, "class_loss": class_loss, "box_loss": box_loss}
    if coverage:
        out["coverage"] = plan.coverage  # type: ignore[assignment]  # set when asked for
    return out


class DetectionLoss(nn.Module):
    """``masked_detection_loss`` with its config (and, optionally, a fixed ancestor matrix)."""

    ancestors: Tensor | None  # a buffer

    def __init__(self, cfg: DetectionLossConfig = DetectionLossConfig(),
                 ancestors: Tensor | np.ndarray | None = None) -> None:
        super().__init__()
        self.cfg = cfg
        anc = None if ancestors is None else torch.as_tensor(ancestors).bool()
        self.register_buffer("ancestors", anc, persistent=False)

    def forward(self, cls_logits: Tensor, box_pred: Tensor, cls_targets: Tensor,
                box_targets: Tensor, num_positives: Tensor, *, class_mask: Tensor | None = None,
                box_weights: Tensor | None = None) -> LossDict:
        return masked_detection_loss(cls_logits, box_pred, cls_targets, box_targets,
                                     num_positives, self.cfg, class_mask=class_mask,
                                     ancestors=self.ancestors, box_weights=box_weights)


def detection_loss(cls_outputs: list[Tensor], box_outputs: list[Tensor],
                   cls_targets: list[Tensor], box_targets: list[Tensor], num_positives: Tensor,
                   num_classes: int, alpha: float, gamma: float, delta: float,
                   box_loss_weight: float, label_smoothing: float = 0.0,
                   legacy_focal: bool = False, *, class_mask: Tensor | None = None,
                   ancestors: Tensor | np.ndarray | None = None,
                   box_weights: Tensor | None = None,
                   certain_cells: str = "all") -> tuple[Tensor, Tensor, Tensor]:
    """Drop-in for ``effdet.loss.loss_fn``: same arguments and ``(total, class_loss, box_loss)``.

    Per level: ``cls_outputs [B, nA*K, H, W]``, ``box_outputs [B, nA*4, H, W]``,
    ``cls_targets [B, H, W, nA]``, ``box_targets [B, H, W, nA*4]``; ``num_positives [B]``.
    The keyword extras take flat anchors (``class_mask [B, K]``, ``ancestors [K, K]``,
    ``box_weights [B, A]``) and the ``certain_cells`` rule. Unlike effdet, ``legacy_focal``
    with ``label_smoothing > 0`` raises instead of silently dropping the smoothing.
    """
    B = num_positives.shape[0]
    cfg = DetectionLossConfig(alpha, gamma, delta, box_loss_weight, label_smoothing, legacy_focal,
                              certain_cells)
    out = masked_detection_loss(
        levels_to_B_A_K(cls_outputs, num_classes), levels_to_B_A_K(box_outputs, 4),
        torch.cat([t.reshape(B, -1) for t in cls_targets], dim=1),
        torch.cat([t.reshape(B, -1, 4) for t in box_targets], dim=1),
        num_positives, cfg, class_mask=class_mask, ancestors=ancestors, box_weights=box_weights)
    return out["loss"], out["class_loss"], out["box_loss"]
