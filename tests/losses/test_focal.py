"""Elementwise focal terms against effdet's own functions and against autograd."""

import math

import pytest
import torch
from effdet.loss import focal_loss_legacy as effdet_legacy
from effdet.loss import new_focal_loss as effdet_new

from taxdet.losses.focal import focal_loss, focal_loss_legacy, focal_value_and_grad


def _inputs(seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(500, 6, generator=gen, dtype=torch.float64) * 5
    t = (torch.rand(500, 6, generator=gen) < 0.3).double()
    return x, t


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_focal_loss_equals_effdet_new_focal(smoothing):
    x, t = _inputs()
    ref = effdet_new(x, t, 0.25, 1.5, normalizer=1.0, label_smoothing=smoothing)
    torch.testing.assert_close(focal_loss(x, t, 0.25, 1.5, smoothing), ref, rtol=1e-12, atol=1e-12)


def test_focal_loss_legacy_equals_effdet_legacy():
    x, t = _inputs(1)
    ref = effdet_legacy(x, t, 0.25, 1.5, normalizer=1.0)
    torch.testing.assert_close(focal_loss_legacy(x, t, 0.25, 1.5), ref, rtol=1e-12, atol=1e-12)


def test_legacy_and_new_agree_without_smoothing():
    # For 0/1 targets both modulators are q**gamma, q = 1 - p_t.
    x, t = _inputs(2)
    torch.testing.assert_close(focal_loss_legacy(x, t, 0.25, 1.5), focal_loss(x, t, 0.25, 1.5))


def test_legacy_modulator_stays_right_for_extreme_logits():
    # Positive with logit -100: p ~ 0, so (1 - p)**gamma ~ 1 and ce ~ 100;
    # loss = alpha * 1 * 100 = 0.25 * 100 = 25. effdet's log1p(exp(100)) overflows -> 0.
    x = torch.tensor([-100.0])
    t = torch.tensor([1.0])
    assert focal_loss_legacy(x, t, 0.25, 1.5).item() == pytest.approx(25.0)
    assert effdet_legacy(x, t, 0.25, 1.5, 1.0).item() == 0.0


@pytest.mark.parametrize("smoothing", [0.0, 0.2])
def test_closed_form_value_and_gradient_match_autograd(smoothing):
    x, t = _inputs(3)
    x.requires_grad_()
    ref = focal_loss(x, t, 0.25, 1.5, smoothing)
    (ref_grad,) = torch.autograd.grad(ref.sum(), x)
    sign = 1 - 2 * t                                   # z = x for negatives, -x for positives
    alpha_factor = t * 0.25 + (1 - t) * 0.75
    loss, grad_z = focal_value_and_grad(x.detach() * sign, alpha_factor, 1.5, smoothing)
    torch.testing.assert_close(loss, ref.detach(), rtol=1e-10, atol=1e-12)
    torch.testing.assert_close(grad_z * sign, ref_grad, rtol=1e-10, atol=1e-12)


def test_closed_form_is_finite_for_huge_logits():
    z = torch.tensor([-1e37, -1e4, 0.0, 1e4, 1e37])
    loss, grad = focal_value_and_grad(z, 0.75, 1.5, 0.1)
    assert torch.isfinite(loss).all() and torch.isfinite(grad).all()
    # z = 0: q = 1/2, ce = ln 2, loss = 0.75 * 0.5**1.5 * ln 2
    assert loss[2].item() == pytest.approx(0.75 * 0.5 ** 1.5 * math.log(2), rel=1e-6)


def test_closed_form_gradient_is_exact_for_confidently_wrong_cells():
    # z = 1e8: q = 1, ce = 1e8, d/dz = a * 1 * (gamma * 0 * ce + 1) = a = 0.75
    # (adding q to -gamma*ce*q + gamma*ce instead would round the 1 away and give 0).
    loss, grad = focal_value_and_grad(torch.tensor([1e8, -1e8]), 0.75, 1.5)
    assert grad.tolist() == [0.75, 0.0] and loss.tolist() == [0.75 * 1e8, 0.0]
