"""Box regression loss: effdet's Huber loss over non-zero targets, with per-anchor weights."""

from __future__ import annotations

from torch import Tensor


def huber(err: Tensor, delta: float) -> Tensor:
    """Elementwise Huber loss of ``err`` (effdet's ``huber_loss`` without reduction)."""
    abs_err = err.abs()
    quadratic = abs_err.clamp(max=delta)
    return 0.5 * quadratic.pow(2) + delta * (abs_err - quadratic)


def box_regression_loss(box_pred: Tensor, box_targets: Tensor, normalizer: Tensor, delta: float,
                        box_weights: Tensor | None = None) -> Tensor:
    """effdet's ``_box_loss`` on flat anchors, optionally weighted per anchor; a scalar.

    ``box_pred, box_targets [B, A, 4]``; ``normalizer`` = num_positives.sum() + 1 (scalar);
    ``box_weights [B, A]`` or None. As in effdet, a coordinate counts iff its target is
    non-zero, and the sum is divided by ``4 * normalizer``. Only anchors with some non-zero
    target are gathered (the rest have zero loss and zero gradient), so the cost scales with
    the positives, not with A. A weight multiplies all four terms of its anchor.
    """
    counts = box_targets != 0.0                                     # [B, A, 4]
    index = counts.any(-1).nonzero(as_tuple=True)                   # anchors with a target
    err = box_pred[index].float() - box_targets[index].float()      # [P, 4]
    loss = huber(err, delta) * counts[index]
    if box_weights is not None:
        loss = loss * box_weights[index].float().unsqueeze(-1)
    return loss.sum() / (normalizer * 4.0)
