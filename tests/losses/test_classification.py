"""Classification variants of Taxonomy Loss Masking against naive per-sample python loops."""

import math

import pytest
import torch

import taxdet.supertax as supertax
from taxdet.losses import (
    BACKGROUND,
    IGNORE,
    HierarchicalBCELoss,
    MaskedBCELoss,
    MaskedFocalLoss,
    MaskedSoftmaxCrossEntropyLoss,
    hierarchical_bce,
    masked_bce,
    masked_focal,
    masked_softmax_cross_entropy,
)
from tests.losses.reference import cell_counts
from tests.paths import DRIVING


def _sigmoid(v: float) -> float:
    return 1.0 / (1.0 + math.exp(-v))


def _bce(x: float, t: float) -> float:
    p = _sigmoid(x)
    return -(t * math.log(p) + (1 - t) * math.log(1 - p))


def _focal(x: float, t: float, alpha: float, gamma: float) -> float:
    p_t = _sigmoid(x) if t == 1 else 1 - _sigmoid(x)
    return (alpha if t == 1 else 1 - alpha) * (1 - p_t) ** gamma * _bce(x, t)


@pytest.fixture
def tiny():
    gen = torch.Generator().manual_seed(0)
    logits = torch.randn(5, 4, generator=gen, dtype=torch.float64) * 2
    targets = (torch.rand(5, 4, generator=gen) < 0.4).double()
    mask = torch.tensor([[1, 1, 0, 1], [0, 0, 1, 1], [1, 1, 1, 1], [0, 1, 0, 0], [1, 0, 1, 0]],
                        dtype=torch.bool)
    return logits.requires_grad_(), targets, mask


def _naive_multilabel(cell, logits, targets, mask):
    """Mean over labeled cells, by looping samples and classes."""
    total, count = 0.0, 0
    for i in range(logits.shape[0]):
        for k in range(logits.shape[1]):
            if mask[i, k]:
                total += cell(logits[i, k].item(), targets[i, k].item())
                count += 1
    return total / count


def test_masked_bce_matches_per_sample_loop(tiny):
    logits, targets, mask = tiny
    expected = _naive_multilabel(_bce, logits, targets, mask)
    assert masked_bce(logits, targets, mask).item() == pytest.approx(expected, rel=1e-6)
    assert MaskedBCELoss()(logits, targets, mask).item() == pytest.approx(expected, rel=1e-6)


def test_masked_focal_matches_per_sample_loop(tiny):
    logits, targets, mask = tiny
    expected = _naive_multilabel(lambda x, t: _focal(x, t, 0.25, 2.0), logits, targets, mask)
    assert masked_focal(logits, targets, mask).item() == pytest.approx(expected, rel=1e-6)
    assert MaskedFocalLoss(0.25, 2.0)(logits, targets, mask).item() == pytest.approx(expected,
                                                                                     rel=1e-6)


@pytest.mark.parametrize("fn", [masked_bce, masked_focal])
def test_multilabel_masked_cells_get_zero_gradient_even_when_nan(tiny, fn):
    logits, targets, mask = tiny
    with torch.no_grad():
        logits[~mask] = math.nan
    loss = fn(logits, targets, mask, reduction="sum")
    (grad,) = torch.autograd.grad(loss, logits)
    assert torch.isfinite(loss) and (grad[~mask] == 0).all() and (grad[mask] != 0).all()
    assert (fn(logits.detach(), targets, mask, reduction="none")[~mask] == 0).all()


def test_masked_softmax_matches_per_sample_loop(tiny):
    logits, _, mask = tiny
    target = torch.tensor([3, 2, 0, 1, IGNORE])
    expected, count = 0.0, 0
    for i, c in enumerate(target.tolist()):
        if c == IGNORE:
            continue
        labeled = [k for k in range(4) if mask[i, k]]   # softmax over labeled classes only
        log_z = math.log(sum(math.exp(logits[i, k].item()) for k in labeled))
        expected += log_z - logits[i, c].item()
        count += 1
    expected /= count
    got = masked_softmax_cross_entropy(logits, target, mask)
    assert got.item() == pytest.approx(expected, rel=1e-6)
    assert MaskedSoftmaxCrossEntropyLoss()(logits, target, mask).item() == pytest.approx(got.item())
    (grad,) = torch.autograd.grad(got, logits)
    assert (grad[~mask] == 0).all() and (grad[4] == 0).all()         # masked cells, IGNORE row


def test_masked_softmax_does_not_push_down_unlabeled_classes(tiny):
    # Sample 1 labels only columns 2, 3: raising column 0's logit changes nothing.
    logits, _, mask = tiny
    target = torch.tensor([3, 2, 0, 1, 0])
    before = masked_softmax_cross_entropy(logits, target, mask, reduction="none")
    bumped = logits.detach().clone()
    bumped[1, 0] += 10.0
    after = masked_softmax_cross_entropy(bumped, target, mask, reduction="none")
    assert after[1].item() == before[1].item()


def test_masked_softmax_raises_when_target_class_is_masked(tiny):
    logits, _, mask = tiny
    masked_msg = r"target class is masked .* samples \[1\] \(columns \[0\]\)"
    with pytest.raises(ValueError, match=masked_msg):
        masked_softmax_cross_entropy(logits, torch.tensor([3, 0, 0, 1, 0]), mask)
    with pytest.raises(ValueError, match=r"target\[2\] = 9: expected a column in \[0, 4\)"):
        masked_softmax_cross_entropy(logits, torch.tensor([3, 2, 9, 1, 0]), mask)


@pytest.mark.parametrize("rule", ["none", "positives", "rows", "all"])
def test_hierarchical_bce_matches_per_sample_loop(rule):
    ts = supertax.load([DRIVING])
    gen = torch.Generator().manual_seed(1)
    logits = torch.randn(4, 7, generator=gen, dtype=torch.float64, requires_grad=True)
    child, car = ts.names.index("pedestrian_child"), ts.names.index("car")
    target = torch.tensor([child, child, car, BACKGROUND])
    mask = torch.from_numpy(ts.masks[[1, 2, 1, 0]])          # customer_b, c, b, a
    total, count = 0.0, 0
    for i, c in enumerate(target.tolist()):
        for k in range(7):
            if cell_counts(rule, c, k, mask[i].tolist(), ts.ancestors):
                t = 1.0 if c >= 0 and ts.ancestors[c, k] else 0.0   # ancestors are positive
                total += _bce(logits[i, k].item(), t)
                count += 1
    got = hierarchical_bce(logits, target, mask, ts.ancestors, certain_cells=rule)
    assert got.item() == pytest.approx(total / count, rel=1e-6)
    module = HierarchicalBCELoss(ts.ancestors, certain_cells=rule)
    assert module(logits, target, mask).item() == pytest.approx(got.item())
    (grad,) = torch.autograd.grad(got, logits)
    person = ts.names.index("person")
    assert grad[0, person] < 0                               # labeled ancestor under b
    # unlabeled ancestor under c: masked when strict, a certain positive otherwise
    assert grad[1, person] == 0 if rule == "none" else grad[1, person] < 0


def test_hierarchical_bce_ignore_rows_count_nothing():
    ts = supertax.load([DRIVING])
    logits = torch.zeros(2, 7, requires_grad=True)
    mask = torch.ones(2, 7, dtype=torch.bool)
    loss = hierarchical_bce(logits, torch.tensor([0, IGNORE]), mask, ts.ancestors,
                            reduction="none")
    assert (loss[1] == 0).all() and (loss[0] > 0).all()


def test_bad_reduction_is_a_clear_error(tiny):
    logits, targets, mask = tiny
    with pytest.raises(ValueError, match="reduction must be one of"):
        masked_bce(logits, targets, mask, reduction="avg")
