"""Taxonomy Loss Masking in the fused detection loss: rows, columns, ancestors, box weights."""

import math

import numpy as np
import pytest
import torch

import taxdet.supertax as supertax
from taxdet.losses import (
    BACKGROUND,
    IGNORE,
    DetectionLoss,
    DetectionLossConfig,
    focal_loss,
    levels_to_B_A_K,
    masked_detection_loss,
)
from taxdet.losses.box import huber
from tests.losses.reference import cell_counts
from tests.paths import DRIVING

# effdet defaults (alpha .25, gamma 1.5, delta .1, weight 50) with strict column masking
CFG = DetectionLossConfig(certain_cells="none")


def _flat(batch):
    """Flat leaf inputs from a LossBatch: logits/box_pred are fresh leaves."""
    cls_logits, box_pred = batch.flat_outputs()
    cls_targets, box_targets = batch.flat_targets()
    return (cls_logits.detach().requires_grad_(), box_pred.detach().requires_grad_(),
            cls_targets, box_targets, batch.num_positives)


def _naive_loss(cls_logits, box_pred, cls_targets, box_targets, num_positives, cfg,
                class_mask, ancestors, box_weights):
    """Cell-by-cell reference: python loops decide targets and masks, autograd does the rest."""
    B, A, K = cls_logits.shape
    targets, valid = np.zeros((B, A, K), np.float32), np.zeros((B, A, K), bool)
    cls_list, mask_list = cls_targets.tolist(), class_mask.tolist()
    for b in range(B):
        for a in range(A):
            c = cls_list[b][a]
            if c == IGNORE:
                continue
            for k in range(K):
                valid[b, a, k] = cell_counts(cfg.certain_cells, c, k, mask_list[b], ancestors)
                targets[b, a, k] = 1.0 if c >= 0 and ancestors[c, k] else 0.0
    cell = focal_loss(cls_logits, torch.from_numpy(targets), cfg.alpha, cfg.gamma,
                      cfg.label_smoothing)
    normalizer = num_positives.sum() + 1
    class_loss = torch.where(torch.from_numpy(valid), cell, 0.0).sum() / normalizer
    box_sum = box_pred.new_zeros(())
    for b, a in (box_targets != 0).any(-1).nonzero().tolist():
        for i in range(4):
            if box_targets[b, a, i] != 0:
                err = box_pred[b, a, i] - box_targets[b, a, i]
                box_sum = box_sum + box_weights[b, a] * huber(err, cfg.delta)
    box_loss = box_sum / (normalizer * 4)
    return class_loss + cfg.box_loss_weight * box_loss, class_loss, box_loss


@pytest.mark.parametrize("rule", ["none", "positives", "rows", "all"])
def test_fused_loss_matches_naive_reference_with_all_extras(batch, rule):
    cls_logits, box_pred, cls_targets, box_targets, num_pos = _flat(batch)
    ts = supertax.load([DRIVING])
    class_mask = torch.from_numpy(ts.masks[[0, 2]])            # customer_a, customer_c
    box_weights = torch.rand(cls_targets.shape, generator=torch.Generator().manual_seed(1)) + 0.5
    cfg = DetectionLossConfig(label_smoothing=0.1, certain_cells=rule,
                              coarse_children="none")
    ours = masked_detection_loss(cls_logits, box_pred, cls_targets, box_targets, num_pos, cfg,
                                 class_mask=class_mask, ancestors=ts.ancestors,
                                 box_weights=box_weights)
    ref = _naive_loss(cls_logits, box_pred, cls_targets, box_targets, num_pos, cfg, class_mask,
                      ts.ancestors, box_weights)
    for key, r in zip(("loss", "class_loss", "box_loss"), ref):
        torch.testing.assert_close(ours[key], r, rtol=1e-5, atol=1e-7)
    module = DetectionLoss(cfg, ancestors=ts.ancestors)(
        cls_logits, box_pred, cls_targets, box_targets, num_pos, class_mask=class_mask,
        box_weights=box_weights)
    assert all(module[k].item() == ours[k].item() for k in ours)
    g_ours = torch.autograd.grad(ours["loss"], (cls_logits, box_pred))
    g_ref = torch.autograd.grad(ref[0], (cls_logits, box_pred))
    for o, r in zip(g_ours, g_ref):
        torch.testing.assert_close(o, r, rtol=1e-4, atol=1e-8)


def test_hand_computed_one_anchor_three_classes():
    # One anchor, target class 1, logits [0, ln 3, -ln 3] -> p = [1/2, 3/4, 1/4];
    # alpha = .25, gamma = 2, num_positives = [1] -> normalizer N = 1 + 1 = 2.
    #  col 0 negative: q = p = 1/2,     ce = -ln(1 - 1/2) = ln 2,   loss = .75 * 1/4  * ln 2
    #  col 1 positive: q = 1 - p = 1/4, ce = -ln(3/4) = ln(4/3),    loss = .25 * 1/16 * ln(4/3)
    #  col 2 negative: q = p = 1/4,     ce = -ln(3/4) = ln(4/3),    loss = .75 * 1/16 * ln(4/3)
    cells = [0.75 * 0.25 * math.log(2), 0.25 / 16 * math.log(4 / 3), 0.75 / 16 * math.log(4 / 3)]
    # = [0.129965, 0.004495, 0.013485]
    # Box: target [.1, 0, -.3, .05], pred [.15, .5, -.1, .05], delta .1:
    #  err .05 -> .5 * .05**2 = .00125; target 0 -> not counted; err .2 -> .5 * .1**2 + .1 * .1
    #  = .015; err 0 -> 0. Sum .01625, weight 2 -> .0325, / (4 N = 8) = .0040625
    logits = torch.tensor([[[0.0, math.log(3), -math.log(3)]]], requires_grad=True)
    box_pred = torch.tensor([[[0.15, 0.5, -0.1, 0.05]]], requires_grad=True)
    cfg = DetectionLossConfig(alpha=0.25, gamma=2.0, delta=0.1, box_loss_weight=50.0,
                              certain_cells="none")
    out = masked_detection_loss(
        logits, box_pred, torch.tensor([[1]]), torch.tensor([[[0.1, 0.0, -0.3, 0.05]]]),
        torch.tensor([1.0]), cfg, class_mask=torch.tensor([[True, True, False]]),
        box_weights=torch.tensor([[2.0]]))
    assert out["class_loss"].item() == pytest.approx((cells[0] + cells[1]) / 2, rel=1e-6)
    assert out["box_loss"].item() == pytest.approx(0.0040625, rel=1e-6)
    assert out["loss"].item() == pytest.approx((cells[0] + cells[1]) / 2 + 50 * 0.0040625, rel=1e-6)
    grad, box_grad = torch.autograd.grad(out["loss"], (logits, box_pred))
    # d/dx col 0 = (1-alpha) q^g (g (1-q) ce + q) / N = .75 * 1/4 * (2 * 1/2 * ln 2 + 1/2) / 2
    assert grad[0, 0, 0].item() == pytest.approx(0.75 * 0.25 * (math.log(2) + 0.5) / 2, rel=1e-6)
    assert grad[0, 0, 2].item() == 0.0                              # masked column
    # box: d/dpred = 50 * w * clamp(err, +-delta) / 8 = 50 * 2 * [.05, -, .1, 0] / 8
    torch.testing.assert_close(box_grad[0, 0], torch.tensor([0.625, 0.0, 1.25, 0.0]))
    # With the default rule the unlabeled column 2 is an off-path negative of the class-1 box
    # (flat taxonomy: every other class is off-path), so it counts.
    default = masked_detection_loss(
        logits, box_pred, torch.tensor([[1]]), torch.tensor([[[0.1, 0.0, -0.3, 0.05]]]),
        torch.tensor([1.0]), DetectionLossConfig(gamma=2.0),
        class_mask=torch.tensor([[True, True, False]]))
    assert default["class_loss"].item() == pytest.approx(sum(cells) / 2, rel=1e-6)


EXTREMES = [math.inf, -math.inf, math.nan, 1e38, -1e38, 3e4]


def test_masked_class_gets_zero_gradient(batch):
    cls_logits, box_pred, cls_targets, box_targets, num_pos = _flat(batch)
    class_mask = torch.ones(2, 7, dtype=torch.bool)
    class_mask[0, [0, 3]] = False
    class_mask[1, 6] = False
    with torch.no_grad():                       # poison every masked cell with extreme logits
        cells = cls_logits[0, :, [0, 3]]
        cls_logits[0, :, [0, 3]] = torch.tensor(EXTREMES).repeat(cells.numel())[:cells.numel()] \
            .view_as(cells)
        cls_logits[1, :, 6] = torch.tensor(EXTREMES).repeat(600)[:cls_logits.shape[1]]
    out = masked_detection_loss(cls_logits, box_pred, cls_targets, box_targets, num_pos, CFG,
                                class_mask=class_mask)
    assert torch.isfinite(out["loss"]) and out["class_loss"].item() > 0
    (grad,) = torch.autograd.grad(out["loss"], cls_logits)
    assert (grad[~class_mask.unsqueeze(1).expand_as(grad)] == 0).all()
    assert torch.isfinite(grad).all() and (grad[class_mask.unsqueeze(1).expand_as(grad)] != 0).any()


def test_fully_masked_sample_contributes_nothing(batch):
    cls_logits, box_pred, cls_targets, box_targets, num_pos = _flat(batch)
    class_mask = torch.ones(2, 7, dtype=torch.bool)
    class_mask[0] = False                          # sample 0's taxonomy labels nothing
    out = masked_detection_loss(cls_logits, box_pred, cls_targets, box_targets, num_pos, CFG,
                                class_mask=class_mask)
    (grad,) = torch.autograd.grad(out["class_loss"], cls_logits)
    assert (grad[0] == 0).all() and (grad[1] != 0).any()
    # Same normalizer, sample 1 alone: num_positives summed over the batch.
    alone = masked_detection_loss(cls_logits[1:], box_pred[1:], cls_targets[1:],
                                  box_targets[1:], num_pos.sum().view(1), CFG)
    torch.testing.assert_close(out["class_loss"], alone["class_loss"])


def test_ignored_anchor_gets_zero_gradient(batch):
    cls_logits, box_pred, cls_targets, box_targets, num_pos = _flat(batch)
    ignored = cls_targets == IGNORE
    assert ignored.sum() > 100
    with torch.no_grad():
        cls_logits[ignored] = math.nan           # must not leak anywhere
    out = masked_detection_loss(cls_logits, box_pred, cls_targets, box_targets, num_pos, CFG)
    (grad,) = torch.autograd.grad(out["loss"], cls_logits)
    assert torch.isfinite(out["loss"])
    assert (grad[ignored] == 0).all() and (grad[cls_targets == BACKGROUND] != 0).all()


def _one_image(class_mask, ancestors):
    """Anchors: 0 = pedestrian_child (col 2) positive, 1 = BACKGROUND, 2 = IGNORE; logits 0."""
    logits = torch.zeros(1, 3, 7, requires_grad=True)
    box_targets = torch.zeros(1, 3, 4)
    box_targets[0, 0] = torch.tensor([0.1, 0.1, 0.2, 0.2])
    cls_targets = torch.tensor([[2, BACKGROUND, IGNORE]])
    out = masked_detection_loss(logits, torch.zeros(1, 3, 4), cls_targets, box_targets,
                                torch.tensor([1.0]), CFG, ancestors=ancestors,
                                class_mask=torch.from_numpy(class_mask).view(1, 7))
    return torch.autograd.grad(out["class_loss"], logits)[0][0]


def test_ancestor_columns_are_positive():
    ts = supertax.load([DRIVING])
    person, adult, child, vehicle = (ts.names.index(n) for n in
                                     ("person", "pedestrian_adult", "pedestrian_child", "vehicle"))
    x = torch.zeros(1, requires_grad=True)       # expected per-cell gradients at logit 0, N = 2
    pos_grad, = torch.autograd.grad(focal_loss(x, torch.ones(1), .25, 1.5).sum() / 2, x)
    neg_grad, = torch.autograd.grad(focal_loss(x, torch.zeros(1), .25, 1.5).sum() / 2, x)
    grad_b = _one_image(ts.label_mask("customer_b"), ts.ancestors)   # labels person
    assert grad_b[0, person].item() == pytest.approx(pos_grad.item()) and pos_grad.item() < 0
    assert grad_b[0, child].item() == pytest.approx(pos_grad.item())
    assert grad_b[0, adult].item() == pytest.approx(neg_grad.item()) and neg_grad.item() > 0
    grad_c = _one_image(ts.label_mask("customer_c"), ts.ancestors)   # does not label person
    assert grad_c[0, person].item() == 0.0 and grad_c[0, child].item() == 0.0
    assert grad_c[0, vehicle].item() == pytest.approx(neg_grad.item())
    flat = _one_image(ts.label_mask("customer_b"), None)              # no hierarchy: negative
    assert flat[0, person].item() == pytest.approx(neg_grad.item())
    assert (grad_b[2] == 0).all()                                    # IGNORE row


def test_box_weight_scales_only_its_box(batch):
    cls_logits, box_pred, cls_targets, box_targets, num_pos = _flat(batch)
    positives = (cls_targets >= 0).nonzero()
    (b0, a0), (b1, a1) = positives[0].tolist(), positives[-1].tolist()
    ones = (cls_targets >= 0).float()
    weights = ones.clone()
    weights[b0, a0] = 3.0
    runs = [masked_detection_loss(cls_logits, box_pred, cls_targets, box_targets, num_pos, CFG,
                                  box_weights=w) for w in (ones, weights)]
    grads = [torch.autograd.grad(r["loss"], box_pred)[0] for r in runs]
    torch.testing.assert_close(grads[1][b0, a0], 3 * grads[0][b0, a0])
    assert grads[0][b0, a0].abs().sum() > 0
    mask = torch.ones(cls_targets.shape, dtype=torch.bool)
    mask[b0, a0] = False
    torch.testing.assert_close(grads[1][mask], grads[0][mask])
    assert grads[1][b1, a1].abs().sum() > 0
    assert runs[1]["class_loss"].item() == runs[0]["class_loss"].item()
    # Only that box's term grew, by 2x its unweighted loss.
    single = torch.zeros_like(ones)
    single[b0, a0] = 1.0
    only = masked_detection_loss(cls_logits, box_pred, cls_targets, box_targets, num_pos, CFG,
                                 box_weights=single)["box_loss"]
    torch.testing.assert_close(runs[1]["box_loss"], runs[0]["box_loss"] + 2 * only)


def test_batch_without_positives_is_finite_and_box_loss_is_zero(batch):
    cls_logits, box_pred, cls_targets, _, _ = _flat(batch)
    cls_targets = torch.where(cls_targets >= 0, BACKGROUND, cls_targets)
    out = masked_detection_loss(cls_logits, box_pred, cls_targets, torch.zeros_like(box_pred),
                                torch.zeros(2), CFG, class_mask=torch.ones(2, 7, dtype=torch.bool))
    assert out["box_loss"].item() == 0.0
    assert torch.isfinite(out["loss"]) and out["class_loss"].item() > 0
    cls_grad, box_grad = torch.autograd.grad(out["loss"], (cls_logits, box_pred))
    assert torch.isfinite(cls_grad).all() and (box_grad == 0).all()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_autocast_stays_finite(batch, dtype):
    gen = torch.Generator().manual_seed(0)
    head = torch.nn.Conv2d(16, 9 * 7, 1)
    features = [torch.randn(2, 16, t.shape[1], t.shape[2], generator=gen) * 50
                for t in batch.cls_targets]            # large activations, saturating logits
    cls_targets, box_targets = batch.flat_targets()
    class_mask = torch.tensor([[True] * 7, [False, True, True, False, True, True, False]])
    with torch.autocast("cpu", dtype=dtype):
        per_level = [head(f) for f in features]
        assert per_level[0].dtype == dtype
        cls_logits = levels_to_B_A_K(per_level, 7)
        _, box_pred = batch.flat_outputs()
        out = masked_detection_loss(cls_logits, box_pred.to(dtype), cls_targets, box_targets,
                                    batch.num_positives, CFG, class_mask=class_mask)
    assert all(v.dtype == torch.float32 and torch.isfinite(v) for v in out.values())
    out["loss"].backward()
    assert torch.isfinite(head.weight.grad).all() and head.weight.grad.abs().sum() > 0
