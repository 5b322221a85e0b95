"""Coarse boxes teach their children: the noisy-OR set term against a hand-written reference.

Driving tree columns: person 0, pedestrian_adult 1, pedestrian_child 2, vehicle 3, car 4,
truck 5, traffic_light 6. Customer A labels person; B adult, child, car, truck; C vehicle and
traffic_light. The reference below knows the children by name, not from the code under test.
"""

import math

import pytest
import torch

import taxdet.supertax as supertax
from taxdet.core.errors import ConfigError
from taxdet.losses import BACKGROUND, IGNORE, DetectionLossConfig, masked_detection_loss
from taxdet.losses.cell_plan import plan_cells
from taxdet.losses.coarse_children import child_matrix, coarse_sets, noisy_or_sum
from taxdet.losses.fused_focal import planned_focal_sum
from tests.paths import DRIVING

PERSON, ADULT, CHILD, VEHICLE, CAR, TRUCK, LIGHT = range(7)
CHILDREN = {PERSON: (ADULT, CHILD), VEHICLE: (CAR, TRUCK)}       # by hand, from driving.yaml
# anchors per sample: (A) person box, background, ignore; (C) vehicle box, car box,
# background; (B) car box, person box, background
TARGETS = torch.tensor([[PERSON, BACKGROUND, IGNORE], [VEHICLE, CAR, BACKGROUND],
                        [CAR, PERSON, BACKGROUND]])
TAXONOMY = [0, 2, 1]
# the (sample, anchor) -> children whose cells stay masked there: B labels adult and child,
# C's car box is a leaf box
COARSE = {(0, 0): CHILDREN[PERSON], (1, 0): CHILDREN[VEHICLE]}


@pytest.fixture(scope="module")
def tree():
    ts = supertax.load([DRIVING])
    return torch.as_tensor(ts.ancestors), torch.as_tensor(ts.masks)


def reference_term(logits, coarse, alpha, gamma):
    """sum over coarse anchors of -alpha (1 - P)^gamma log P, P = 1 - prod(1 - sigmoid)."""
    total = 0.0
    for (b, a), kids in coarse.items():
        none = 1.0
        for k in kids:
            none *= 1.0 - 1.0 / (1.0 + math.exp(-float(logits[b, a, k])))
        total += -alpha * (none ** gamma) * math.log(1.0 - none)
    return total


def _loss(tree, logits, rule="none", weight=1.0, alpha=0.25, gamma=1.5, masks=None, **kw):
    ancestors, tax_masks = tree
    masks = tax_masks[TAXONOMY] if masks is None else masks
    B, A, _ = logits.shape
    cfg = DetectionLossConfig(alpha=alpha, gamma=gamma, coarse_children=rule,
                              coarse_children_weight=weight)
    return masked_detection_loss(logits, torch.zeros(B, A, 4), TARGETS,
                                 torch.zeros(B, A, 4), torch.full((B,), 2.0), cfg,
                                 class_mask=masks, ancestors=ancestors, **kw)["class_loss"]


def test_children_are_the_direct_children_only(tree):
    ancestors, _ = tree
    got = {c: tuple(child_matrix(ancestors)[c].nonzero().flatten().tolist()) for c in range(7)}
    assert got == {PERSON: (ADULT, CHILD), VEHICLE: (CAR, TRUCK), ADULT: (), CHILD: (), CAR: (),
                   TRUCK: (), LIGHT: ()}
    chain = torch.tensor([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=torch.bool)   # 0 > 1 > 2
    assert child_matrix(chain).nonzero().tolist() == [[0, 1], [1, 2]]


@pytest.mark.parametrize("alpha, gamma, weight", [(1.0, 0.0, 1.0), (0.25, 1.5, 0.7)])
def test_the_term_equals_the_reference_over_the_normalizer(tree, alpha, gamma, weight):
    logits = torch.randn(3, 3, 7, generator=torch.Generator().manual_seed(0)) * 2
    off = _loss(tree, logits, alpha=alpha, gamma=gamma)
    on = _loss(tree, logits, "noisy_or", weight, alpha, gamma)
    expected = weight * reference_term(logits, COARSE, alpha, gamma) / (3 * 2.0 + 1)
    assert float(on - off) == pytest.approx(expected, rel=1e-5)


def _extra_grad(tree, logits, **kw):
    """d(noisy_or loss - plain loss) / d logits, [B, A, K]."""
    grads = []
    for rule in ("none", "noisy_or"):
        x = logits.clone().requires_grad_(True)
        (g,) = torch.autograd.grad(_loss(tree, x, rule, **kw), x)
        grads.append(g)
    return grads[1] - grads[0]


def test_children_are_pushed_up_while_none_is_confident_and_nothing_else_moves(tree):
    extra = _extra_grad(tree, torch.zeros(3, 3, 7))
    pushed = {(b, a, k) for b, a, k in (extra < 0).nonzero().tolist()}
    assert pushed == {(0, 0, ADULT), (0, 0, CHILD), (1, 0, CAR), (1, 0, TRUCK)}
    assert not (extra > 0).any()
    confident = torch.zeros(3, 3, 7)
    confident[0, 0, CHILD] = 12.0                    # one child is sure: its set is satisfied
    extra = _extra_grad(tree, confident)
    assert extra[0, 0].abs().max() < 1e-5
    assert (extra[1, 0, [CAR, TRUCK]] < 0).all()


def test_a_child_the_taxonomy_labels_leaves_the_set(tree):
    ancestors, tax_masks = tree
    masks = tax_masks[TAXONOMY].clone()
    masks[0, ADULT] = True                           # A also labels adults: a Human box is no
    plan = plan_cells(TARGETS, 7, masks, ancestors, "all")      # adult, so only child is left
    sets = coarse_sets(TARGETS[plan.index], plan.row_weights, child_matrix(ancestors))
    assert sets[0].nonzero().flatten().tolist() == [CHILD]
    logits = torch.randn(3, 3, 7, generator=torch.Generator().manual_seed(1))
    diff = _loss(tree, logits, "noisy_or", masks=masks) - _loss(tree, logits, masks=masks)
    expected = reference_term(logits, {(0, 0): (CHILD,), (1, 0): (CAR, TRUCK)}, 0.25, 1.5) / 7
    assert float(diff) == pytest.approx(expected, rel=1e-5)


def test_coarse_parents_limit_the_rule(tree):
    parents = torch.zeros(7, dtype=torch.bool)
    parents[PERSON] = True                           # e.g. only the exhaustive parents
    extra = _extra_grad(tree, torch.zeros(3, 3, 7), coarse_parents=parents)
    assert {tuple(i) for i in (extra != 0).nonzero().tolist()} == {(0, 0, ADULT), (0, 0, CHILD)}


def test_none_is_bit_identical_to_the_plain_planned_loss(tree):
    ancestors, tax_masks = tree
    logits = torch.randn(3, 3, 7, generator=torch.Generator().manual_seed(2)) * 3
    logits[2, 2, LIGHT] = float("inf")                          # extreme logits too
    plan = plan_cells(TARGETS, 7, tax_masks[TAXONOMY], ancestors, "all")
    x = logits.clone().requires_grad_(True)
    plain = planned_focal_sum(x, plan) / 7.0
    (g_plain,) = torch.autograd.grad(plain, x)
    x2 = logits.clone().requires_grad_(True)
    ours = _loss(tree, x2)
    (g_ours,) = torch.autograd.grad(ours, x2)
    assert torch.equal(plain, ours) and torch.equal(g_plain, g_ours)


def test_without_a_mask_or_a_coarse_box_the_term_is_zero(tree):
    ancestors, _ = tree
    logits = torch.randn(3, 3, 7, generator=torch.Generator().manual_seed(3))
    cfg = DetectionLossConfig(coarse_children="noisy_or")
    args = (logits, torch.zeros(3, 3, 4), TARGETS, torch.zeros(3, 3, 4), torch.ones(3))
    naive = masked_detection_loss(*args, cfg, ancestors=ancestors)["class_loss"]
    plain = masked_detection_loss(*args, DetectionLossConfig(coarse_children="none"),
                                  ancestors=ancestors)
    assert torch.equal(naive, plain["class_loss"])


def test_config_rejects_unknown_rule_and_bad_weight():
    with pytest.raises(ConfigError, match="coarse_children must be one of none, noisy_or"):
        DetectionLossConfig(coarse_children="softmax")
    with pytest.raises(ConfigError, match="coarse_children_weight must be > 0"):
        DetectionLossConfig(coarse_children_weight=0.0)
    assert DetectionLossConfig().coarse_children == "noisy_or"      # on by default (ablation)


def test_extreme_logits_outside_the_set_do_not_leak():
    x = torch.zeros(2, 4)
    x[0, 3] = float("inf")                           # same row, not in the set
    x[1, 0] = -200.0                                 # a set member far below: P tiny but > 0
    x.requires_grad_(True)
    sets = torch.tensor([[True, True, False, False], [True, False, False, False]])
    loss = noisy_or_sum(x, sets, alpha=1.0, gamma=0.0)
    (g,) = torch.autograd.grad(loss, x)
    assert torch.isfinite(loss) and torch.isfinite(g).all()
    assert (g[0, :2] < 0).all() and g[0, 3] == 0 and g[1, 0] < 0
    assert float(loss.detach()) == pytest.approx(-math.log(0.75) + 200.0, rel=1e-4)
