"""The cell plan: what every cell of a ``[B, A, K]`` logit block trains toward, kept sparse.

Almost every anchor is background, so the fused focal loss (``taxdet.losses.fused_focal``) needs:
a per-cell weight for the dense negative pass (``[B, 1, K]``, or ``[B, A, K]`` with
pseudo-labels), the few assigned anchors' rows with their targets and weights, and the few
pseudo-positive cells on background anchors. ``plan_cells`` builds that from the anchor
targets, the taxonomy mask and the ``certain_cells`` rule, and can count the supervision
each class gets (``COVERAGE_KINDS``) for the coverage report.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from taxdet.core.targets import BACKGROUND, IGNORE
from taxdet.losses.ancestor_targets import expand_targets
from taxdet.losses.certain_cells import background_weights, positive_row_weights
from taxdet.losses.loss_config import PseudoLabelConfig
from taxdet.losses.pseudo_labels import PseudoCells, pseudo_cells, unknown_cells

# "negative" = "background_negative" (negative cells at background anchors) + "box_negative"
# (off-path negative cells at other classes' boxes); the split comes last so that readers of
# the first four kinds keep working
COVERAGE_KINDS = ("positive", "ancestor_positive", "negative", "pseudo", "background_negative",
                  "box_negative")


@dataclass
class CellPlan:
    """Sparse targets and weights of one ``[B, A, K]`` block (P assigned anchors).

    ``negative_weight``: None (every cell counts) or ``[B, 1, K]`` / ``[B, A, K]`` float;
    ``index``: the assigned anchors (b, a); ``row_targets [P, K]`` 0/1 float;
    ``row_weights [P, K]`` float or None; ``extra``: (b, a, k) of pseudo-positive cells on
    background anchors, weighted ``extra_weight``; ``ignored``: (b, a) of IGNORE anchors;
    ``coverage [B, 6, K]`` counts per ``COVERAGE_KINDS`` when asked for.
    """

    negative_weight: Tensor | None
    index: tuple[Tensor, ...]
    row_targets: Tensor
    row_weights: Tensor | None
    extra: tuple[Tensor, ...] | None
    extra_weight: float | Tensor          # or [N], one per extra cell (soft pseudo-labels)
    ignored: tuple[Tensor, ...]
    coverage: Tensor | None = None

    def dense_weight(self, shape: torch.Size) -> Tensor:
        """Every cell's weight, ``[B, A, K]`` float (for the rare non-finite-logit path)."""
        w = torch.ones(shape) if self.negative_weight is None else self.negative_weight
        w = w.expand(shape).clone()
        if self.row_weights is not None:
            w[self.index] = self.row_weights
        if self.extra is not None:
            w[self.extra] = self.extra_weight
        w[self.ignored] = 0.0
        return w


def plan_cells(cls_targets: Tensor, num_classes: int, class_mask: Tensor | None = None,
               ancestors: Tensor | None = None, certain_cells: str = "none",
               teacher_probs: Tensor | None = None, pseudo: PseudoLabelConfig | None = None,
               coverage: bool = False, pos_thresholds: Tensor | None = None) -> CellPlan:
    """The plan for ``cls_targets [B, A] int64`` (column, BACKGROUND or IGNORE).

    ``class_mask [B, K] bool`` (None: every column labeled, no masking), ``ancestors
    [K, K] bool``, ``certain_cells`` one of ``CERTAIN_CELLS``; ``teacher_probs [B, A, K]``
    with ``pseudo`` turn masked cells into pseudo-labels (ignored without a class mask;
    ``pos_thresholds [K]``: per-class positive thresholds, ``pseudo_cells``).
    """
    index = (cls_targets >= 0).nonzero(as_tuple=True)
    classes = cls_targets[index]
    row_targets = expand_targets(classes, num_classes, ancestors)
    ignored = (cls_targets == IGNORE).nonzero(as_tuple=True)
    if class_mask is None:
        plan = CellPlan(None, index, row_targets, None, None, 0.0, ignored)
        if coverage:
            full = torch.ones(cls_targets.shape[0], num_classes, dtype=torch.bool,
                              device=cls_targets.device)
            plan.coverage = _coverage(cls_targets, index, row_targets, row_targets >= 0, full,
                                      None, None)
        return plan
    background = background_weights(class_mask, ancestors, certain_cells)
    row_certain = positive_row_weights(classes, class_mask[index[0]], ancestors, certain_cells)
    plan = CellPlan(background.unsqueeze(1).float(), index, row_targets, row_certain.float(),
                    None, 0.0, ignored)
    cells = None
    if teacher_probs is not None and pseudo is not None:
        unknown = unknown_cells(background, index, row_certain, cls_targets, IGNORE)
        cells = pseudo_cells(teacher_probs, unknown, ancestors, pseudo, pos_thresholds)
        _add_pseudo(plan, cells, cls_targets, pseudo.weight,
                    confidence(teacher_probs, cells, ancestors) if pseudo.soft else None)
    if coverage:
        plan.coverage = _coverage(cls_targets, index, row_targets, row_certain, background,
                                  class_mask, cells)
    return plan


def _add_pseudo(plan: CellPlan, cells: PseudoCells, cls_targets: Tensor, weight: float,
                soft: Tensor | None = None) -> None:
    """Fold the pseudo-labels into the plan: dense negatives, row cells, background positives.
    With ``soft [B, A, K]`` (``confidence``) each cell's weight is also scaled by it."""
    if soft is None:
        pos_w, neg_w = cells.positive.float() * weight, cells.negative.float() * weight
    else:
        pos_w = torch.where(cells.positive, soft * weight, 0.0)
        neg_w = torch.where(cells.negative, soft * weight, 0.0)
    # both weights are set: pseudo-labels come with a class mask
    plan.negative_weight = plan.negative_weight + neg_w  # type: ignore[operator]
    plan.row_targets = torch.maximum(plan.row_targets, cells.positive[plan.index].float())
    plan.row_weights = plan.row_weights + (pos_w + neg_w)[plan.index]  # type: ignore[operator]
    on_background = cells.positive & (cls_targets == BACKGROUND).unsqueeze(-1)
    plan.extra = on_background.nonzero(as_tuple=True)
    plan.extra_weight = pos_w[plan.extra] if soft is not None else weight


def confidence(probs: Tensor, cells: PseudoCells, ancestors: Tensor | None) -> Tensor:
    """``[B, A, K]``: the teacher's confidence in each pseudo-label (0 elsewhere): ``1 - p``
    at a pseudo-negative; at a pseudo-positive the highest ``p`` of the column and its
    descendants (an ancestor made positive by a confident child is as sure as the child)."""
    out = torch.where(cells.negative, 1.0 - probs, 0.0)
    b, a, k = cells.positive.nonzero(as_tuple=True)
    if len(k):
        K = probs.shape[-1]
        below = (ancestors[:, k].T if ancestors is not None else   # [N, K]: k and descendants
                 torch.nn.functional.one_hot(k, K).bool())
        out[b, a, k] = torch.where(below, probs[b, a], 0.0).amax(1)
    return out


def _coverage(cls_targets: Tensor, index: tuple[Tensor, ...], row_targets: Tensor,
              row_certain: Tensor, background: Tensor, class_mask: Tensor | None,
              cells: PseudoCells | None) -> Tensor:
    """Per-sample supervision counts ``[B, 6, K]`` in ``COVERAGE_KINDS`` order."""
    B, K = background.shape
    out = torch.zeros(B, len(COVERAGE_KINDS), K, device=cls_targets.device)
    positive = (row_targets > 0) & row_certain
    out[:, 0].index_add_(0, index[0], positive.float())
    if class_mask is not None:
        out[:, 1].index_add_(0, index[0], (positive & ~class_mask[index[0]]).float())
    n_background = (cls_targets == BACKGROUND).sum(1, keepdim=True).float()
    out[:, 4] = n_background * background.float()
    out[:, 5].index_add_(0, index[0], (row_certain & (row_targets == 0)).float())
    out[:, 2] = out[:, 4] + out[:, 5]
    if cells is not None:
        out[:, 3] = (cells.positive | cells.negative).sum(1).float()
    return out
