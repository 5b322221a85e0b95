"""Elementwise sigmoid focal loss terms (effdet's "new" and "legacy" variants) and their gradient.

All functions here are elementwise: no reduction, no normalisation, no masking. The
callers (``taxdet.losses.fused_focal``, ``taxdet.losses.classification_loss``) decide which
cells count.

For binary targets t in {0, 1} both variants reduce to one closed form. Write the
*signed logit* ``z = x`` for a negative cell (t = 0) and ``z = -x`` for a positive one
(t = 1), and ``q = sigmoid(z)`` (the probability of the wrong answer, 1 - p_t):

    modulator  = q ** gamma                      (legacy: exp(g*t*(-x) - g*log1p(exp(-x))))
    ce         = softplus(z) - (s / 2) * z      (BCE with targets smoothed to t(1-s) + s/2)
    loss       = a * q ** gamma * ce            (a = alpha for t = 1, 1 - alpha for t = 0)
    d loss / dz = a * q ** gamma * (gamma * (1 - q) * ce + q - s / 2)

``focal_value_and_grad`` evaluates that form with few full-size temporaries; the
fused detection loss uses it for both the dense negative pass and the sparse positive rows.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def focal_loss(logits: Tensor, targets: Tensor, alpha: float, gamma: float,
               label_smoothing: float = 0.0) -> Tensor:
    """effdet's "new" focal loss, elementwise (``effdet.loss.new_focal_loss`` without normalizer).

    ``logits`` and ``targets`` have the same shape (any); ``targets`` holds 0 / 1. The
    focal factors use the unsmoothed targets; only the cross-entropy sees
    ``t * (1 - label_smoothing) + label_smoothing / 2``. Differentiable by autograd.
    """
    targets = targets.to(logits.dtype)
    prob = logits.sigmoid()
    p_t = targets * prob + (1.0 - targets) * (1.0 - prob)
    alpha_factor = targets * alpha + (1.0 - targets) * (1.0 - alpha)
    modulator = (1.0 - p_t) ** gamma
    if label_smoothing > 0.0:
        targets = targets * (1.0 - label_smoothing) + 0.5 * label_smoothing
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    return alpha_factor * modulator * ce


def focal_loss_legacy(logits: Tensor, targets: Tensor, alpha: float, gamma: float) -> Tensor:
    """effdet's legacy focal loss, elementwise (``effdet.loss.focal_loss_legacy``, no normalizer).

    Same value as effdet's for ordinary logits; the modulator is computed with
    ``softplus`` instead of ``log1p(exp(.))``, so it stays right for |logit| > 88 where
    effdet's overflows (effdet gives 0 instead of ~1 for a positive with logit -100).
    No label smoothing (effdet's legacy variant has none).
    """
    targets = targets.to(logits.dtype)
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    modulator = torch.exp(-gamma * (targets * logits + F.softplus(-logits)))
    loss = modulator * ce
    return torch.where(targets == 1.0, alpha * loss, (1.0 - alpha) * loss)


def focal_value_and_grad(z: Tensor, alpha_factor: float | Tensor, gamma: float,
                         label_smoothing: float = 0.0) -> tuple[Tensor, Tensor]:
    """Focal loss and its derivative with respect to the signed logit ``z`` (see module doc).

    ``z``: signed logits (x for negative cells, -x for positive cells), float32, any shape.
    ``alpha_factor``: ``1 - alpha`` for negatives, ``alpha`` for positives (scalar or
    broadcastable tensor). Returns ``(loss, dloss_dz)`` shaped like ``z``; both are finite and
    accurate for any finite ``z`` up to ~1e38 (``ce * (1 - q)`` is formed before ``q`` is
    added, so a confidently wrong cell keeps its gradient ``a``). Both effdet variants give
    these values for binary targets (legacy = this with ``label_smoothing = 0``).
    Four full-size allocations, the rest in place.
    """
    s = label_smoothing
    log_q = F.logsigmoid(z)                                      # log q, q = sigmoid(z)
    q = torch.exp(log_q)
    ce = torch.sub(z, log_q) if s == 0.0 else torch.mul(z, 1.0 - 0.5 * s).sub_(log_q)
    weight = log_q.mul_(gamma).exp_().mul_(alpha_factor)         # a * q ** gamma
    loss = ce * weight
    grad = q.add_(ce.addcmul_(ce, q, value=-1.0), alpha=gamma)   # q + gamma * ce * (1 - q)
    if s > 0.0:
        grad.sub_(0.5 * s)
    return loss, grad.mul_(weight)
