"""Taxonomy Loss Masking for image classifiers trained on concatenated datasets.

Each sample comes from a source that labels only some classes (``class_mask [B, K] bool``,
True = labeled). Cells of unlabeled classes get exactly zero loss and zero gradient, even if
their logits are inf/NaN (the logits are replaced before any math, and the loss after it).

Which one to use:

- ``masked_bce`` — multi-label images (several classes may be present), flat classes.
- ``masked_focal`` — as ``masked_bce`` when positives are rare or many easy negatives
  dominate (long-tailed multi-label); alpha/gamma as in the detection loss.
- ``masked_softmax_cross_entropy`` — exactly one class per image, taxonomies are flat
  (mutually exclusive labeled classes). The softmax runs over the sample's labeled classes
  only, so classes its source could not have labeled are not pushed down.
- ``hierarchical_bce`` — one class per image under a hierarchical super-taxonomy: the target
  (e.g. ``pedestrian_child``) is also a positive for its ancestors (``person``), which a
  softmax cannot express; unlabeled columns stay masked.

``reduction``: ``"mean"`` divides the sum by the number of labeled cells (multi-label) or of
counted samples (softmax), so masked cells do not dilute it; ``"sum"``; ``"none"`` returns
the per-cell ``[B, K]`` (per-sample ``[B]`` for softmax) loss with zeros where masked.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from taxdet.core.targets import BACKGROUND, IGNORE
from taxdet.losses.ancestor_targets import as_ancestors, expand_targets
from taxdet.losses.certain_cells import background_weights, check_rule, positive_row_weights
from taxdet.losses.focal import focal_loss

REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, count: Tensor, reduction: str) -> Tensor:
    """Apply ``reduction`` to already-masked ``loss``; ``count`` = number of counted terms."""
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    if reduction == "mean":
        return loss.sum() / count.clamp(min=1)
    raise ValueError(f"reduction must be one of {REDUCTIONS}, got {reduction!r}")


def _check_mask(logits: Tensor, class_mask: Tensor) -> None:
    if logits.dim() != 2 or class_mask.shape != logits.shape or class_mask.dtype != torch.bool:
        raise ValueError(f"expected logits [B, K] and class_mask [B, K] bool, got logits "
                         f"{list(logits.shape)} and class_mask {list(class_mask.shape)} "
                         f"{class_mask.dtype}")


def _masked_multilabel(cell_loss: Callable[[Tensor, Tensor], Tensor], logits: Tensor,
                       targets: Tensor, class_mask: Tensor, reduction: str) -> Tensor:
    """``cell_loss(logits, targets)`` on labeled cells only; masked cells are exact zeros."""
    _check_mask(logits, class_mask)
    if targets.shape != logits.shape:
        raise ValueError(f"targets: expected {list(logits.shape)}, got {list(targets.shape)}")
    safe = torch.where(class_mask, logits.float(), 0.0)
    loss = torch.where(class_mask, cell_loss(safe, targets.float()), 0.0)
    return _reduce(loss, class_mask.sum(), reduction)


def certain_mask(target: Tensor, class_mask: Tensor, ancestors: Tensor | None,
                 rule: str) -> Tensor:
    """The cells that count for single-label samples under a ``certain_cells`` rule, ``[B, K]``.

    ``target [B] int64``: the sample's column, or BACKGROUND (no class present) / IGNORE
    (the sample's labeled columns, as they are). See ``taxdet.losses.certain_cells``.
    """
    check_rule(rule)
    out = background_weights(class_mask, ancestors, rule).clone()
    out[target == IGNORE] = class_mask[target == IGNORE]
    present = target >= 0
    out[present] = positive_row_weights(target[present], class_mask[present], ancestors, rule)
    return out


def _single_label_mask(targets: Tensor, class_mask: Tensor,
                       ancestors: Tensor | np.ndarray | None, rule: str) -> Tensor:
    """``certain_mask`` for the rows of multi-hot ``targets [B, K]`` with at most one positive;
    rows with several positives (several objects: not one path) keep ``class_mask``."""
    if rule == "none":
        return class_mask
    if ancestors is not None:
        ancestors = as_ancestors(ancestors, class_mask.shape[-1], class_mask.device)
    count = (targets > 0).sum(-1)
    column = torch.where(count == 1, targets.argmax(-1), BACKGROUND)
    column = torch.where(count > 1, IGNORE, column)
    return certain_mask(column, class_mask, ancestors, rule)


def masked_bce(logits: Tensor, targets: Tensor, class_mask: Tensor, reduction: str = "mean",
               certain_cells: str = "none", ancestors: Tensor | np.ndarray | None = None
               ) -> Tensor:
    """Binary cross-entropy with logits on labeled cells. ``logits, targets [B, K]`` (0/1).

    ``certain_cells`` (with ``ancestors [K, K]`` for a tree) also counts the certain cells of
    single-label rows (``certain_mask``); the default counts the labeled cells only.
    """
    def bce(x: Tensor, t: Tensor) -> Tensor:
        return F.binary_cross_entropy_with_logits(x, t, reduction="none")
    _check_mask(logits, class_mask)
    counted = _single_label_mask(targets, class_mask, ancestors, certain_cells)
    return _masked_multilabel(bce, logits, targets, counted, reduction)


def masked_focal(logits: Tensor, targets: Tensor, class_mask: Tensor, alpha: float = 0.25,
                 gamma: float = 2.0, reduction: str = "mean", certain_cells: str = "none",
                 ancestors: Tensor | np.ndarray | None = None) -> Tensor:
    """Sigmoid focal loss (effdet's "new" form) on labeled cells. ``logits, targets [B, K]``;
    ``certain_cells`` and ``ancestors`` as in ``masked_bce``."""
    def focal(x: Tensor, t: Tensor) -> Tensor:
        return focal_loss(x, t, alpha, gamma)
    _check_mask(logits, class_mask)
    counted = _single_label_mask(targets, class_mask, ancestors, certain_cells)
    return _masked_multilabel(focal, logits, targets, counted, reduction)


def hierarchical_bce(logits: Tensor, target: Tensor, class_mask: Tensor,
                     ancestors: Tensor | np.ndarray, reduction: str = "mean",
                     certain_cells: str = "all") -> Tensor:
    """Masked BCE against ancestor-expanded targets. ``target [B] int64`` (column; BACKGROUND
    = no class present, every labeled column negative; IGNORE = sample not counted).

    ``certain_cells`` (``taxdet.losses.certain_cells``): beyond the labeled columns, the target's
    unlabeled ancestors are positives and its off-path classes negatives (``rows``), and a
    BACKGROUND sample is negative for the descendants of its labeled classes (``all``);
    ``none`` counts the labeled columns only."""
    if target.shape != logits.shape[:1] or bool((target < IGNORE).any()):
        raise ValueError(f"target: expected [B] = {list(logits.shape[:1])} with columns, "
                         f"BACKGROUND or IGNORE, got shape {list(target.shape)}, "
                         f"min {int(target.min()) if target.numel() else None}")
    anc = as_ancestors(ancestors, logits.shape[-1], logits.device)
    multi_hot = expand_targets(target, logits.shape[-1], anc)
    counted = certain_mask(target, class_mask, anc, certain_cells)
    counted &= (target != IGNORE).unsqueeze(-1)
    return masked_bce(logits, multi_hot, counted, reduction)


def _check_single_label(target: Tensor, class_mask: Tensor) -> Tensor:
    """Rows that count (target != IGNORE); ``ValueError`` for bad or masked targets."""
    B, K = class_mask.shape
    if target.shape != (B,) or target.dtype != torch.int64:
        raise ValueError(f"target: expected [B] = [{B}] int64, got {list(target.shape)} "
                         f"{target.dtype}")
    counted = target != IGNORE
    out_of_range = counted & ((target < 0) | (target >= K))
    if out_of_range.any():
        i = int(out_of_range.nonzero()[0])
        raise ValueError(f"target[{i}] = {int(target[i])}: expected a column in [0, {K}) or "
                         f"IGNORE ({IGNORE})")
    column = target.clamp(0, K - 1)
    masked = counted & ~class_mask.gather(1, column.unsqueeze(1)).squeeze(1)
    if masked.any():
        rows = masked.nonzero().flatten().tolist()
        raise ValueError(f"target class is masked (not labeled by the sample's taxonomy) for "
                         f"samples {rows} (columns {target[masked].tolist()}); such a "
                         f"label cannot come from that source: check the taxonomy mapping")
    return counted


def masked_softmax_cross_entropy(logits: Tensor, target: Tensor, class_mask: Tensor,
                                 reduction: str = "mean") -> Tensor:
    """Cross-entropy with the softmax over each sample's labeled classes only.

    ``logits [B, K]``, ``target [B] int64`` (a labeled column, or IGNORE to skip the sample),
    ``class_mask [B, K] bool``. Unlabeled logits act as -inf: zero probability, zero gradient.
    Raises ``ValueError`` if a target column is masked for its sample.
    """
    _check_mask(logits, class_mask)
    counted = _check_single_label(target, class_mask)
    log_prob = torch.where(class_mask, logits.float(), -torch.inf).log_softmax(dim=-1)
    picked = log_prob.gather(1, target.clamp(min=0).unsqueeze(1)).squeeze(1)
    loss = torch.where(counted, -picked, 0.0)
    return _reduce(loss, counted.sum(), reduction)


class MaskedBCELoss(nn.Module):
    """``masked_bce`` as a module: ``forward(logits, targets, class_mask)``."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, logits: Tensor, targets: Tensor, class_mask: Tensor) -> Tensor:
        return masked_bce(logits, targets, class_mask, self.reduction)


class MaskedFocalLoss(nn.Module):
    """``masked_focal`` as a module: ``forward(logits, targets, class_mask)``."""

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0, reduction: str = "mean") -> None:
        super().__init__()
        self.alpha, self.gamma, self.reduction = alpha, gamma, reduction

    def forward(self, logits: Tensor, targets: Tensor, class_mask: Tensor) -> Tensor:
        return masked_focal(logits, targets, class_mask, self.alpha, self.gamma, self.reduction)


class MaskedSoftmaxCrossEntropyLoss(nn.Module):
    """``masked_softmax_cross_entropy`` as a module: ``forward(logits, target, class_mask)``."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        self.reduction = reduction

    def forward(self, logits: Tensor, target: Tensor, class_mask: Tensor) -> Tensor:
        return masked_softmax_cross_entropy(logits, target, class_mask, self.reduction)


class HierarchicalBCELoss(nn.Module):
    """``hierarchical_bce`` with fixed ancestors: ``forward(logits, target, class_mask)``."""

    ancestors: Tensor  # a buffer

    def __init__(self, ancestors: Tensor | np.ndarray, reduction: str = "mean",
                 certain_cells: str = "all") -> None:
        super().__init__()
        self.register_buffer("ancestors", torch.as_tensor(ancestors).bool(), persistent=False)
        self.reduction, self.certain_cells = reduction, certain_cells

    def forward(self, logits: Tensor, target: Tensor, class_mask: Tensor) -> Tensor:
        return hierarchical_bce(logits, target, class_mask, self.ancestors, self.reduction,
                                self.certain_cells)
