"""Pseudo-labels for the cells no label decides: a confident teacher fills masked cells.

The teacher is the EMA model (``taxdet.detection.training``). In a masked cell only (a cell that
neither the sample's taxonomy nor the ``certain_cells`` rules decide), a teacher probability
``>= pos_threshold`` makes the cell a positive, ``<= neg_threshold`` a negative, each with
loss weight ``weight`` (times the teacher's confidence, ``p`` or ``1 - p``, with ``soft``);
anything between stays masked. Per-class positive thresholds ``[K]`` (fitted on validation,
``taxdet.detection.training.pseudo_schedule``) may replace ``pos_threshold``. A
pseudo-positive child also makes its (masked) ancestors positive: one object is one path up
the tree.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from taxdet.losses.loss_config import PseudoLabelConfig


@dataclass
class PseudoCells:
    """The teacher's decisions on masked cells, ``[B, A, K] bool`` each (disjoint)."""

    positive: Tensor
    negative: Tensor


def pseudo_cells(teacher_probs: Tensor, unknown: Tensor, ancestors: Tensor | None,
                 cfg: PseudoLabelConfig, pos_thresholds: Tensor | None = None) -> PseudoCells:
    """Pseudo-positive and pseudo-negative cells among the ``unknown [B, A, K]`` ones.

    ``teacher_probs [B, A, K]``: the teacher's sigmoid scores; ``ancestors [K, K] bool``
    (``ancestors[j, i]``: i is j or an ancestor of j) or None for a flat taxonomy;
    ``pos_thresholds [K]`` (optional) per-class positive thresholds instead of
    ``cfg.pos_threshold`` (``inf``: never a pseudo-positive).
    """
    if teacher_probs.shape != unknown.shape:
        raise ValueError(f"teacher_probs: expected shape {list(unknown.shape)}, got "
                         f"{list(teacher_probs.shape)}")
    threshold = cfg.pos_threshold if pos_thresholds is None else pos_thresholds
    positive = unknown & (teacher_probs >= threshold)
    if ancestors is not None and bool(positive.any()):
        # cell i turns positive when some positive j has i among its ancestors
        up = (positive.flatten(0, 1).float() @ ancestors.float()) > 0
        positive = up.view_as(positive) & unknown
    negative = unknown & (teacher_probs <= cfg.neg_threshold) & ~positive
    return PseudoCells(positive, negative)


def unknown_cells(background: Tensor, index: tuple[Tensor, ...], row_weights: Tensor,
                  cls_targets: Tensor, ignore_value: int) -> Tensor:
    """Cells no rule decides: ``[B, A, K] bool`` (IGNORE rows are never unknown).

    ``background [B, K]``: cells that count on background anchors; ``index`` the assigned
    anchors (b, a) and ``row_weights [P, K]`` the cells that count on them.
    """
    B, A = cls_targets.shape
    unknown = (~background).unsqueeze(1).expand(B, A, -1).clone()
    unknown[index] = ~row_weights
    unknown[cls_targets == ignore_value] = False
    return unknown


def teacher_probabilities(logits: Tensor) -> Tensor:
    """Sigmoid of the teacher's ``[B, A, K]`` logits, float32, without a graph."""
    with torch.no_grad():
        return logits.detach().float().sigmoid()
