"""Fused masked focal loss over ``[B, A, K]`` logits: one dense pass plus sparse positive rows.

Almost every anchor is a negative (BACKGROUND) or IGNORE, and a negative cell's focal term
depends on its logit alone. So the whole ``[B, A, K]`` block is evaluated once as negatives
with the closed form of ``losses.focal.focal_value_and_grad`` (value and gradient together),
then the few positive anchors' rows are recomputed with their (ancestor-expanded) targets and
written back, and IGNORE rows are zeroed by index. Unlabeled class columns get a zero alpha
factor (exact zeros; see ``masked_focal_terms`` for extreme logits). The gradient is kept
for backward, so backward is one in-place multiply: no autograd graph of ``[B, A, K]``
temporaries.
"""

from __future__ import annotations

import torch
from torch import Tensor
from torch.autograd.function import once_differentiable

from losses.focal import focal_value_and_grad
from losses.hierarchy import expand_targets
from losses.targets import IGNORE


def _positive_rows(x: Tensor, cls_targets: Tensor, class_mask: Tensor | None,
                   ancestors: Tensor | None, alpha: float, gamma: float,
                   label_smoothing: float) -> tuple[tuple[Tensor, Tensor], Tensor, Tensor]:
    """Loss and d/dx of the positive anchors' rows: ``(index (b, a), loss [P, K], grad [P, K])``."""
    index = (cls_targets >= 0).nonzero(as_tuple=True)
    targets = expand_targets(cls_targets[index], x.shape[-1], ancestors)     # [P, K]
    sign = 1.0 - 2.0 * targets                                              # z = sign * x
    alpha_factor = targets * (2.0 * alpha - 1.0) + (1.0 - alpha)            # alpha or 1 - alpha
    if class_mask is not None:
        alpha_factor = alpha_factor * class_mask[index[0]]
    loss, grad_z = focal_value_and_grad(x[index] * sign, alpha_factor, gamma, label_smoothing)
    return index, loss, grad_z.mul_(sign)


def _all_moderate(x: Tensor, bound: float = 1e30) -> bool:
    """True iff every value is finite with magnitude below ``bound`` (one reduction pass)."""
    lo, hi = torch.aminmax(x)
    return bool(lo > -bound) and bool(hi < bound)


def masked_focal_terms(logits: Tensor, cls_targets: Tensor, class_mask: Tensor | None,
                       ancestors: Tensor | None, alpha: float, gamma: float,
                       label_smoothing: float) -> tuple[Tensor, Tensor]:
    """Per-cell focal loss and its gradient, masked: ``(loss [B, A, K], grad [B, A, K])`` float32.

    ``logits [B, A, K]``, ``cls_targets [B, A] int64`` (column, BACKGROUND or IGNORE),
    ``class_mask [B, K] bool`` (True = labeled) or None, ``ancestors [K, K] bool`` or None.
    IGNORE rows and unlabeled columns are exactly 0 in both outputs. No normalisation.

    The column mask rides on the alpha-factor multiply (a zero factor times a finite value
    is exactly 0); if any logit is non-finite or beyond 1e30, the masked cells are
    overwritten with ``masked_fill_`` as well, so inf/NaN never leaks from a masked cell.
    """
    x = logits.detach().float()
    neg_alpha = 1.0 - alpha
    if class_mask is not None:
        neg_alpha = class_mask.unsqueeze(1) * neg_alpha                    # [B, 1, K]
    loss, grad = focal_value_and_grad(x, neg_alpha, gamma, label_smoothing)
    index, row_loss, row_grad = _positive_rows(x, cls_targets, class_mask, ancestors, alpha,
                                               gamma, label_smoothing)
    loss[index] = row_loss
    grad[index] = row_grad
    ignored = (cls_targets == IGNORE).nonzero(as_tuple=True)
    loss[ignored] = 0.0
    grad[ignored] = 0.0
    if class_mask is not None and not _all_moderate(x):
        for t in (loss, grad):
            t.masked_fill_(~class_mask.unsqueeze(1), 0.0)
    return loss, grad


class MaskedFocalSum(torch.autograd.Function):
    """Sum of the masked focal loss over ``[B, A, K]``; backward reuses the forward's gradient."""

    @staticmethod
    def forward(ctx, logits: Tensor, cls_targets: Tensor, class_mask: Tensor | None,
                ancestors: Tensor | None, alpha: float, gamma: float,
                label_smoothing: float) -> Tensor:
        loss, grad = masked_focal_terms(logits, cls_targets, class_mask, ancestors,
                                        alpha, gamma, label_smoothing)
        ctx.save_for_backward(grad)
        ctx.logits_dtype = logits.dtype
        ctx.used = False
        return loss.sum()

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_output: Tensor):
        # The stored gradient is scaled in place (saves a [B, A, K] allocation), so a second
        # backward through the same graph (retain_graph=True) would be wrong: refuse it.
        if ctx.used:
            raise RuntimeError("MaskedFocalSum: backward called twice on one forward; "
                               "recompute the loss instead of retain_graph=True")
        ctx.used = True
        (grad,) = ctx.saved_tensors
        return grad.mul_(grad_output).to(ctx.logits_dtype), None, None, None, None, None, None


def masked_focal_sum(logits: Tensor, cls_targets: Tensor, class_mask: Tensor | None = None,
                     ancestors: Tensor | None = None, alpha: float = 0.25, gamma: float = 1.5,
                     label_smoothing: float = 0.0) -> Tensor:
    """Unnormalised masked focal loss, a differentiable scalar (see ``masked_focal_terms``)."""
    return MaskedFocalSum.apply(logits, cls_targets, class_mask, ancestors,
                                alpha, gamma, label_smoothing)
