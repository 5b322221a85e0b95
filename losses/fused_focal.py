"""Fused masked focal loss over ``[B, A, K]`` logits: one dense pass plus sparse positive rows.

Almost every anchor is a negative (BACKGROUND) or IGNORE, and a negative cell's focal term
depends on its logit alone. So the whole ``[B, A, K]`` block is evaluated once as negatives
with the closed form of ``taxdet.losses.focal.focal_value_and_grad`` (value and gradient together),
then the few positive anchors' rows are recomputed with their (ancestor-expanded) targets and
written back, and IGNORE rows are zeroed by index. Which cells count, and how much, is the
``CellPlan`` (``taxdet.losses.cell_plan``: taxonomy mask, certain-cell rules, pseudo-labels); a
cell of weight 0 gets a zero alpha factor (exact zeros; see ``planned_focal_terms`` for
extreme logits). The gradient is kept
for backward, so backward is one in-place multiply: no autograd graph of ``[B, A, K]``
temporaries.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from taxdet.losses.cell_plan import CellPlan, plan_cells
from taxdet.losses.focal import focal_value_and_grad


def _positive_rows(x: Tensor, plan: CellPlan, alpha: float, gamma: float,
                   label_smoothing: float) -> tuple[Tensor, Tensor]:
    """Loss and d/dx of the assigned anchors' rows: ``(loss [P, K], grad [P, K])``."""
    targets = plan.row_targets                                              # [P, K]
    sign = 1.0 - 2.0 * targets                                              # z = sign * x
    alpha_factor = targets * (2.0 * alpha - 1.0) + (1.0 - alpha)            # alpha or 1 - alpha
    if plan.row_weights is not None:
        alpha_factor = alpha_factor * plan.row_weights
    loss, grad_z = focal_value_and_grad(x[plan.index] * sign, alpha_factor, gamma,
                                        label_smoothing)
    return loss, grad_z.mul_(sign)


def _all_moderate(x: Tensor, bound: float = 1e30) -> bool:
    """True iff every value is finite with magnitude below ``bound`` (one reduction pass)."""
    lo, hi = torch.aminmax(x)
    return bool(lo > -bound) and bool(hi < bound)


def planned_focal_terms(logits: Tensor, plan: CellPlan, alpha: float, gamma: float,
                        label_smoothing: float) -> tuple[Tensor, Tensor]:
    """Per-cell focal loss and its gradient under ``plan``: ``(loss, grad)``, ``[B, A, K]`` float32.

    Cells of weight 0 (IGNORE rows, masked cells) are exactly 0 in both outputs: the weight
    rides on the alpha-factor multiply (a zero factor times a finite value is exactly 0); if
    any logit is non-finite or beyond 1e30, zero-weight cells are overwritten with
    ``masked_fill_`` as well, so inf/NaN never leaks from a masked cell.
    """
    x = logits.detach().float()
    neg_alpha: float | Tensor = 1.0 - alpha
    if plan.negative_weight is not None:
        neg_alpha = plan.negative_weight * neg_alpha                        # [B, 1|A, K]
    loss, grad = focal_value_and_grad(x, neg_alpha, gamma, label_smoothing)
    row_loss, row_grad = _positive_rows(x, plan, alpha, gamma, label_smoothing)
    loss[plan.index] = row_loss
    grad[plan.index] = row_grad
    if plan.extra is not None and plan.extra[0].numel():
        extra_loss, extra_grad = focal_value_and_grad(-x[plan.extra], alpha * plan.extra_weight,
                                                      gamma, label_smoothing)
        loss[plan.extra] = extra_loss
        grad[plan.extra] = extra_grad.neg_()
    loss[plan.ignored] = 0.0
    grad[plan.ignored] = 0.0
    if plan.negative_weight is not None and not _all_moderate(x):
        unweighted = plan.dense_weight(x.shape) == 0
        for t in (loss, grad):
            t.masked_fill_(unweighted, 0.0)
    return loss, grad


def masked_focal_terms(logits: Tensor, cls_targets: Tensor, class_mask: Tensor | None,
                       ancestors: Tensor | None, alpha: float, gamma: float,
                       label_smoothing: float, certain_cells: str = "none"
                       ) -> tuple[Tensor, Tensor]:
    """Per-cell focal loss and its gradient, masked: ``(loss [B, A, K], grad [B, A, K])`` float32.

    ``logits [B, A, K]``, ``cls_targets [B, A] int64`` (column, BACKGROUND or IGNORE),
    ``class_mask [B, K] bool`` (True = labeled) or None, ``ancestors [K, K] bool`` or None,
    ``certain_cells`` the rule of ``taxdet.losses.certain_cells``. IGNORE rows and the cells the
    rule leaves masked are exactly 0 in both outputs. No normalisation.
    """
    plan = plan_cells(cls_targets, logits.shape[-1], class_mask, ancestors, certain_cells)
    return planned_focal_terms(logits, plan, alpha, gamma, label_smoothing)


class MaskedFocalSum(torch.autograd.Function):
    """Sum of the planned focal loss over ``[B, A, K]``; backward reuses the forward's gradient."""

    @staticmethod
    def forward(ctx: Any, logits: Tensor, plan: CellPlan, alpha: float, gamma: float,
                label_smoothing: float) -> Tensor:
        loss, grad = planned_focal_terms(logits, plan, alpha, gamma, label_smoothing)
        ctx.save_for_backward(grad)
        ctx.logits_dtype = logits.dtype
        ctx.used = False
        return loss.sum()

    @staticmethod
    @once_differentiable
    def backward(ctx: Any, grad_output: Tensor) -> tuple[Tensor, None, None, None, None]:
        # The stored gradient is scaled in place (saves a [B, A, K] allocation), so a second
        # backward through the same graph (retain_graph=True) would be wrong: refuse it.
        if ctx.used:
            raise RuntimeError("MaskedFocalSum: backward called twice on one forward; "
                               "recompute the loss instead of retain_graph=True")
        ctx.used = True
        (grad,) = ctx.saved_tensors
        return grad.mul_(grad_output).to(ctx.logits_dtype), None, None, None, None


def planned_focal_sum(logits: Tensor, plan: CellPlan, alpha: float = 0.25, gamma: float = 1.5,
                      label_smoothing: float = 0.0) -> Tensor:
    """Unnormalised focal loss under a ``CellPlan``, a differentiable scalar."""
    total: Tensor = MaskedFocalSum.apply(logits, plan, alpha, gamma, label_smoothing)
    return total


def masked_focal_sum(logits: Tensor, cls_targets: Tensor, class_mask: Tensor | None = None,
                     ancestors: Tensor | None = None, alpha: float = 0.25, gamma: float = 1.5,
                     label_smoothing: float = 0.0, certain_cells: str = "none") -> Tensor:
    """Unnormalised masked focal loss, a differentiable scalar (see ``masked_focal_terms``)."""
    plan = plan_cells(cls_targets, logits.shape[-1], class_mask, ancestors, certain_cells)
    return planned_focal_sum(logits, plan, alpha, gamma, label_smoothing)
