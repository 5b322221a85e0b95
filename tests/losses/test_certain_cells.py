"""Certain cells, pseudo-labels and coverage counts on hand-made anchors of the driving tree.

Columns: person 0, pedestrian_adult 1, pedestrian_child 2, vehicle 3, car 4, truck 5,
traffic_light 6. Customer A labels person; B adult, child, car, truck (and so person,
exhaustive); C vehicle and traffic_light.
"""

import pytest
import torch

import taxdet.supertax as supertax
from taxdet.core.errors import ConfigError
from taxdet.losses import BACKGROUND, IGNORE, DetectionLossConfig, masked_detection_loss
from taxdet.losses.cell_plan import COVERAGE_KINDS, plan_cells
from taxdet.losses.fused_focal import planned_focal_terms
from taxdet.losses.loss_config import PseudoLabelConfig
from tests.paths import DRIVING

PERSON, ADULT, CHILD, VEHICLE, CAR, TRUCK, LIGHT = range(7)
POS, NEG, MASKED = "+", "-", "0"


@pytest.fixture(scope="module")
def tree():
    ts = supertax.load([DRIVING])
    assert list(ts.names) == ["person", "pedestrian_adult", "pedestrian_child", "vehicle", "car",
                              "truck", "traffic_light"]
    return torch.as_tensor(ts.ancestors), torch.as_tensor(ts.masks)


def _signs(rule, tree, cls_targets, tax_rows):
    """Per cell: '+' (pushed up: positive), '-' (pushed down: negative), '0' (no gradient)."""
    ancestors, masks = tree
    logits = torch.zeros(len(tax_rows), cls_targets.shape[1], 7, requires_grad=True)
    out = masked_detection_loss(logits, torch.zeros(*logits.shape[:2], 4), cls_targets,
                                torch.zeros(*logits.shape[:2], 4), torch.ones(len(tax_rows)),
                                DetectionLossConfig(certain_cells=rule, coarse_children="none"),
                                class_mask=masks[tax_rows], ancestors=ancestors)
    (grad,) = torch.autograd.grad(out["class_loss"], logits)
    return ["".join(POS if g < 0 else NEG if g > 0 else MASKED for g in row)
            for row in grad.flatten(0, 1).tolist()]


# anchors: A's person box, A's background, B's car box, B's background, C's truck... C labels
# no truck: C's box is a vehicle box; then C's background
CASES = torch.tensor([[PERSON, BACKGROUND], [CAR, BACKGROUND], [VEHICLE, BACKGROUND]])
EXPECTED = {          # columns: person adult child vehicle car truck light
    "none":      ["+000000", "-000000", "---0+-0", "---0--0", "000+00-", "000-00-"],
    "positives": ["+000000", "-000000", "---++-0", "---0--0", "000+00-", "000-00-"],
    "rows":      ["+00----", "-000000", "---++--", "---0--0", "---+00-", "000-00-"],
    "all":       ["+00----", "---0000", "---++--", "---0--0", "---+00-", "000----"],
}


@pytest.mark.parametrize("rule", list(EXPECTED))
def test_exactly_the_certain_cells_get_gradient_in_the_right_direction(tree, rule):
    assert _signs(rule, tree, CASES, [0, 1, 2]) == EXPECTED[rule]


def test_ignored_anchor_gets_no_gradient_under_any_rule(tree):
    for rule in EXPECTED:
        assert _signs(rule, tree, torch.tensor([[IGNORE]]), [1]) == ["0000000"]


def test_unknown_rule_is_a_config_error():
    with pytest.raises(ConfigError, match="certain_cells must be one of none, positives"):
        DetectionLossConfig(certain_cells="some")


@pytest.mark.parametrize("field, value", [("start_ap", 1.0), ("start_ap", -0.1),
                                          ("class_precision", 1.0), ("class_precision", -1.0)])
def test_pseudo_schedule_settings_out_of_range_are_config_errors(field, value):
    with pytest.raises(ConfigError, match=f"{field} must be in"):
        PseudoLabelConfig(enabled=True, **{field: value})


def _pseudo_signs(tree, teacher_value, cls_targets, tax_rows, **pseudo):
    ancestors, masks = tree
    B, A = cls_targets.shape
    logits = torch.zeros(B, A, 7)
    probs = torch.full((B, A, 7), teacher_value)
    plan = plan_cells(cls_targets, 7, masks[tax_rows], ancestors, "all", probs,
                      PseudoLabelConfig(enabled=True, **pseudo))
    _, grad = planned_focal_terms(logits, plan, 0.25, 1.5, 0.0)
    return ["".join(POS if g < 0 else NEG if g > 0 else MASKED for g in row)
            for row in grad.flatten(0, 1).tolist()], grad


def test_confident_teacher_turns_masked_cells_into_targets(tree):
    # A's person box and background: the masked cells are adult/child at the box, and the
    # vehicle subtree + light at the background anchor.
    sure_yes, _ = _pseudo_signs(tree, 0.9, torch.tensor([[PERSON, BACKGROUND]]), [0])
    assert sure_yes == ["+++----", "---++++"]
    sure_no, grad = _pseudo_signs(tree, 0.01, torch.tensor([[PERSON, BACKGROUND]]), [0])
    assert sure_no == ["+------", "-------"]
    certain = _signs("all", tree, torch.tensor([[PERSON, BACKGROUND]]), [0])
    assert certain == ["+00----", "---0000"]          # without a teacher those cells were masked


def test_unconfident_teacher_leaves_masked_cells_masked(tree):
    unsure, _ = _pseudo_signs(tree, 0.3, torch.tensor([[PERSON, BACKGROUND]]), [0])
    assert unsure == ["+00----", "---0000"]


def test_pseudo_cells_carry_their_weight(tree):
    _, full = _pseudo_signs(tree, 0.01, torch.tensor([[BACKGROUND]]), [0], weight=1.0)
    _, half = _pseudo_signs(tree, 0.01, torch.tensor([[BACKGROUND]]), [0], weight=0.5)
    torch.testing.assert_close(half[0, 0, VEHICLE:], full[0, 0, VEHICLE:] * 0.5)
    torch.testing.assert_close(half[0, 0, :VEHICLE], full[0, 0, :VEHICLE])   # certain cells


def test_soft_pseudo_labels_weigh_each_cell_by_the_teachers_confidence(tree):
    ancestors, masks = tree
    x = torch.zeros(1, 2, 7)
    probs = torch.tensor([0.9, 0.3, 0.3, 0.02, 0.04, 0.8, 0.01]).expand(1, 2, 7).contiguous()
    targets = torch.tensor([[PERSON, BACKGROUND]])
    hard, soft = (plan_cells(targets, 7, masks[[0]], ancestors, "all", probs,
                             PseudoLabelConfig(enabled=True, weight=0.5, soft=s))
                  for s in (False, True))
    w_hard, w_soft = hard.dense_weight(x.shape), soft.dense_weight(x.shape)
    # the box's masked child cells: adult unsure (masked), child unsure; background anchor:
    # truck 0.8 a pseudo-positive, and so vehicle (as sure as its child), car 0.04 and light
    # 0.01 pseudo-negatives
    assert w_hard[0, 1, VEHICLE:].tolist() == [0.5, 0.5, 0.5, 0.5]
    torch.testing.assert_close(w_soft[0, 1, VEHICLE:],
                               torch.tensor([0.8, 0.96, 0.8, 0.99]) * 0.5)
    torch.testing.assert_close(w_soft[0, :, :VEHICLE], w_hard[0, :, :VEHICLE])  # certain cells


def test_per_class_thresholds_replace_the_single_one(tree):
    ancestors, masks = tree
    probs = torch.full((1, 1, 7), 0.7)
    thresholds = torch.full((7,), float("inf"))
    thresholds[LIGHT] = 0.6                      # only traffic_light was fitted
    plan = plan_cells(torch.tensor([[BACKGROUND]]), 7, masks[[0]], ancestors, "all", probs,
                      PseudoLabelConfig(enabled=True), pos_thresholds=thresholds)
    assert set(zip(*(t.tolist() for t in plan.extra))) == {(0, 0, LIGHT)}
    plain = plan_cells(torch.tensor([[BACKGROUND]]), 7, masks[[0]], ancestors, "all", probs,
                       PseudoLabelConfig(enabled=True))
    assert len(plain.extra[0]) == 4              # vehicle, car, truck, light at 0.5


def test_pseudo_positive_child_makes_its_masked_ancestor_positive(tree):
    ancestors, masks = tree
    probs = torch.full((1, 1, 7), 0.3)
    probs[0, 0, CAR] = 0.95                       # teacher: a car; vehicle itself unsure
    plan = plan_cells(torch.tensor([[BACKGROUND]]), 7, masks[[0]], ancestors, "all", probs,
                      PseudoLabelConfig(enabled=True))
    cells = set(zip(*(t.tolist() for t in plan.extra)))
    assert cells == {(0, 0, CAR), (0, 0, VEHICLE)}


def test_coverage_counts_each_kind_of_cell(tree):
    ancestors, masks = tree
    cls_targets = torch.tensor([[CAR, BACKGROUND, BACKGROUND, IGNORE]])
    plan = plan_cells(cls_targets, 7, masks[[1]], ancestors, "all", coverage=True)
    counts = dict(zip(COVERAGE_KINDS, plan.coverage[0].tolist()))
    # B's car box: car (labeled) and vehicle (ancestor-only) positives; person, adult, child,
    # truck, light off-path negatives; two background anchors: person, adult, child, car, truck
    assert counts["positive"] == [0, 0, 0, 1, 1, 0, 0]
    assert counts["ancestor_positive"] == [0, 0, 0, 1, 0, 0, 0]
    assert counts["negative"] == [3, 3, 3, 0, 2, 3, 1]
    assert counts["pseudo"] == [0] * 7
