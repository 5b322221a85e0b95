"""The coverage counts split negatives into background negatives and box negatives.

Driving tree columns: person 0, pedestrian_adult 1, pedestrian_child 2, vehicle 3, car 4,
truck 5, traffic_light 6. Customer A labels person; B adult, child, car, truck (and so person,
exhaustive; vehicle is not exhaustive, so B's background says nothing about it); C vehicle and
traffic_light. Every expected count below is counted by hand from the docstring rules.
"""

import numpy as np
import pytest
import torch

import taxdet.supertax as supertax
from taxdet.detection.training.coverage import KINDS, coverage_dict, coverage_table
from taxdet.losses import BACKGROUND, IGNORE
from taxdet.losses.cell_plan import COVERAGE_KINDS, plan_cells
from tests.paths import DRIVING

PERSON, ADULT, CHILD, VEHICLE, CAR, TRUCK, LIGHT = range(7)


@pytest.fixture(scope="module")
def tree():
    ts = supertax.load([DRIVING])
    return torch.as_tensor(ts.ancestors), torch.as_tensor(ts.masks)


def _counts(tree, cls_targets, taxonomy, rule="all", masked=True):
    ancestors, masks = tree
    plan = plan_cells(torch.tensor([cls_targets]), 7, masks[[taxonomy]] if masked else None,
                      ancestors, rule, coverage=True)
    return {k: [int(v) for v in row] for k, row in zip(COVERAGE_KINDS, plan.coverage[0])}


def test_old_kinds_keep_their_place_and_the_split_comes_last():
    assert COVERAGE_KINDS[:4] == ("positive", "ancestor_positive", "negative", "pseudo")
    assert COVERAGE_KINDS[4:] == ("background_negative", "box_negative")
    assert KINDS == COVERAGE_KINDS


def test_b_car_box_two_background_anchors_and_an_ignored_one(tree):
    n = _counts(tree, [CAR, BACKGROUND, BACKGROUND, IGNORE], taxonomy=1)
    # two background anchors: B's labeled columns plus person (B covers it: exhaustive)
    assert n["background_negative"] == [2, 2, 2, 0, 2, 2, 0]
    # the car box: every column off the path car -> vehicle (the IGNORE anchor counts nowhere)
    assert n["box_negative"] == [1, 1, 1, 0, 0, 1, 1]
    assert n["negative"] == [3, 3, 3, 0, 2, 3, 1]


def test_a_column_that_only_other_classes_boxes_teach_has_no_background_negatives(tree):
    # B: two adult boxes, three background anchors; vehicle (labeled by nobody in B, not
    # exhaustive) and light are negatives at the adult boxes only
    n = _counts(tree, [ADULT, BACKGROUND, ADULT, BACKGROUND, BACKGROUND], taxonomy=1)
    assert n["background_negative"] == [3, 3, 3, 0, 3, 3, 0]
    assert n["box_negative"] == [0, 0, 2, 2, 2, 2, 2]
    assert n["positive"] == [2, 2, 0, 0, 0, 0, 0]
    assert n["ancestor_positive"] == [0] * 7          # B labels person through its children


def test_strict_masking_has_box_negatives_only_in_labeled_columns(tree):
    n = _counts(tree, [VEHICLE, BACKGROUND], taxonomy=2, rule="none")
    assert n["background_negative"] == [0, 0, 0, 1, 0, 0, 1]
    assert n["box_negative"] == [0, 0, 0, 0, 0, 0, 1]


def test_without_a_mask_every_column_counts_both_ways(tree):
    n = _counts(tree, [TRUCK, BACKGROUND, BACKGROUND, BACKGROUND], taxonomy=0, masked=False)
    assert n["background_negative"] == [3] * 7
    assert n["box_negative"] == [1, 1, 1, 0, 1, 0, 1]
    assert n["negative"] == [4, 4, 4, 3, 4, 3, 4]


def test_report_and_table_carry_the_split():
    counts = np.zeros((2, len(KINDS), 2), dtype=np.int64)
    counts[0, KINDS.index("background_negative")] = [10, 0]
    counts[1, KINDS.index("box_negative")] = [1, 7]
    counts[:, KINDS.index("negative")] = counts[:, 4] + counts[:, 5]
    report = coverage_dict(counts, ["a", "b"], ["shelf", "box"])
    assert report["kinds"] == list(KINDS)
    assert report["total"]["box"] == {"positive": 0, "ancestor_positive": 0, "negative": 7,
                                      "pseudo": 0, "background_negative": 0, "box_negative": 7}
    assert report["taxonomies"]["a"]["shelf"]["background_negative"] == 10
    lines = coverage_table(report).splitlines()
    assert "bg negative" in lines[0] and "box negative" in lines[0]
    assert lines[2].split()[:6] == ["box", "0", "0", "0", "7", "0"]
