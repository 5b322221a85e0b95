"""taxdet.detection.linting.scoring: each issue type on hand-made ground truth and detections of the
driving taxonomies (A labels only Human = person; B adults, children, cars, trucks; C Vehicle
and Traffic_light), with no model."""

from __future__ import annotations

import numpy as np
import pytest

from taxdet.core.errors import ConfigError
from taxdet.detection.linting import (
    CustomerView,
    ImageCase,
    ImageInfo,
    ImageLabels,
    ImagePredictions,
    LintConfig,
    check_image,
)

PERSON, ADULT, CHILD, VEHICLE, CAR, TRUCK, LIGHT = range(7)
BOX = [100.0, 100.0, 140.0, 200.0]      # a person-shaped box, 40 x 100
FAR = [300.0, 50.0, 360.0, 90.0]        # overlaps nothing above
ALL = LintConfig(min_score=0.0)


def labels(*rows, ignore=()) -> ImageLabels:
    """rows of (box, column, annotation id)."""
    boxes = np.array([r[0] for r in rows], float).reshape(-1, 4)
    return ImageLabels(boxes, np.array([r[1] for r in rows], np.int64),
                       np.array([r[2] for r in rows], np.int64),
                       np.array(ignore, float).reshape(-1, 4))


def dets(*rows) -> ImagePredictions:
    """rows of (box, score, column)."""
    return ImagePredictions(np.array([r[0] for r in rows], float).reshape(-1, 4),
                            np.array([r[1] for r in rows], float),
                            np.array([r[2] for r in rows], np.int64))


def check(taxset, customer, gt, pred, cfg=ALL):
    case = ImageCase(gt, pred, CustomerView.of(taxset, customer), ImageInfo(customer, 7, "x.png",
                                                                            70, "a.json"))
    return check_image(case, cfg)


def of_type(issues, kind):
    return [i for i in issues if i.type == kind]


def test_confident_unmatched_detection_of_a_labeled_class_is_a_missing_box(taxset):
    issues = check(taxset, "customer_b", labels(), dets((FAR, 0.8, CAR)))
    (issue,) = issues
    assert issue.type == "missing_box" and issue.score == pytest.approx(0.8)
    assert issue.suggested == "Car" and issue.model_class == "car"
    assert issue.box == [300.0, 50.0, 60.0, 40.0]                       # x, y, w, h
    assert (issue.customer, issue.image_id, issue.source_image_id) == ("customer_b", 7, 70)


def test_a_class_the_customer_does_not_label_is_never_a_missing_box(taxset):
    # A labels only people: a 0.99 car and traffic light are not A's business
    pred = dets((FAR, 0.99, CAR), (BOX, 0.99, LIGHT), ([0, 0, 50, 50], 0.99, VEHICLE))
    assert check(taxset, "customer_a", labels(), pred) == []
    # C labels no people, not even coarsely
    assert check(taxset, "customer_c", labels(), dets((BOX, 0.99, CHILD))) == []


def test_a_child_is_asked_as_the_coarse_label_that_covers_it(taxset):
    (issue,) = check(taxset, "customer_a", labels(), dets((BOX, 0.7, CHILD)))
    assert issue.suggested == "Human" and issue.model_class == "pedestrian_child"
    (issue,) = check(taxset, "customer_c", labels(), dets((FAR, 0.6, TRUCK)))
    assert issue.suggested == "Vehicle"


def test_detections_of_one_object_on_one_path_give_one_missing_box(taxset):
    # hierarchy decoding: person scored as its best child, on the same box; the tie goes to
    # the more specific class
    pred = dets((BOX, 0.7, PERSON), (BOX, 0.7, CHILD), ([101, 99, 141, 199], 0.5, ADULT))
    (issue,) = check(taxset, "customer_a", labels(), pred)
    assert issue.model_class == "pedestrian_child" and issue.score == pytest.approx(0.7)


def test_a_detection_matching_a_box_or_inside_a_crowd_is_no_missing_box(taxset):
    gt = labels((BOX, CAR, 1), ignore=[[290, 40, 370, 100]])
    pred = dets(([102, 102, 140, 200], 0.9, CAR), (FAR, 0.9, CAR))
    assert of_type(check(taxset, "customer_b", gt, pred), "missing_box") == []


def test_confident_contradiction_within_the_taxonomy_is_a_wrong_class(taxset):
    pred = dets((BOX, 0.8, TRUCK), (BOX, 0.1, CAR), (BOX, 0.8, VEHICLE))
    (issue,) = check(taxset, "customer_b", labels((BOX, CAR, 5)), pred)
    # truck 0.8 contradicts Car, supported at 0.1 by car; vehicle (the parent) is neutral
    assert issue.type == "wrong_class" and issue.score == pytest.approx(0.8 * (1 - 0.1))
    assert (issue.ann_id, issue.label, issue.suggested) == (5, "Car", "Truck")


def test_a_coarse_label_is_no_wrong_class_when_the_model_names_a_descendant(taxset):
    assert check(taxset, "customer_a", labels((BOX, PERSON, 1)), dets((BOX, 0.9, CHILD))) == []
    assert check(taxset, "customer_c", labels((BOX, VEHICLE, 1)), dets((BOX, 0.9, TRUCK))) == []


def test_a_contradiction_the_customer_could_not_have_labeled_is_no_wrong_class(taxset):
    # a Human box the model calls a car: A has no label for cars, so no relabeling to ask for
    assert check(taxset, "customer_a", labels((BOX, PERSON, 1)), dets((BOX, 0.9, CAR))) == []
    # for C, a traffic light on a Vehicle box is a class C could have used
    (issue,) = check(taxset, "customer_c", labels((BOX, VEHICLE, 1)), dets((BOX, 0.9, LIGHT)))
    assert issue.type == "wrong_class" and issue.suggested == "Traffic_light"


def test_a_supported_box_is_no_wrong_class_even_with_a_rival(taxset):
    pred = dets((BOX, 0.9, ADULT), (BOX, 0.5, CHILD))
    (issue,) = check(taxset, "customer_b", labels((BOX, ADULT, 1)), pred)
    assert issue.score == pytest.approx(0.5 * (1 - 0.9))                # 0.05: ranked low
    assert check(taxset, "customer_b", labels((BOX, ADULT, 1)), pred, LintConfig()) == []


def test_box_the_model_places_elsewhere_is_a_bad_box_and_not_also_a_missing_one(taxset):
    moved = [130.0, 100.0, 170.0, 200.0]    # 30 px right: IoU = 10 * 100 / (2 * 4000 - 1000)
    (issue,) = check(taxset, "customer_b", labels((moved, ADULT, 3)), dets((BOX, 0.9, ADULT)))
    assert issue.type == "bad_box" and issue.ann_id == 3 and issue.label == "Pedestrian_adult"
    assert issue.iou == pytest.approx(1000 / 7000, abs=1e-4)
    assert issue.score == pytest.approx(0.9) and issue.model_box == [100.0, 100.0, 40.0, 100.0]


def test_a_well_matched_box_next_to_another_object_is_no_bad_box(taxset):
    neighbour = [130.0, 100.0, 170.0, 200.0]
    gt = labels((BOX, ADULT, 1), (neighbour, ADULT, 2))
    pred = dets((BOX, 0.9, ADULT), (neighbour, 0.8, ADULT))
    assert check(taxset, "customer_b", gt, pred) == []


def test_two_boxes_of_one_class_overlapping_almost_entirely_are_a_duplicate(taxset):
    near = [100.0, 100.0, 140.0, 202.0]     # IoU = 4000 / 4080 = 0.98
    (issue,) = check(taxset, "customer_b", labels((BOX, CAR, 1), (near, CAR, 2)), dets())
    assert issue.type == "duplicate_box" and (issue.ann_id, issue.other_ann_id) == (2, 1)
    assert issue.score == pytest.approx(4000 / 4080, abs=1e-4)


def test_boxes_of_two_classes_at_one_place_are_no_duplicate(taxset):
    assert check(taxset, "customer_b", labels((BOX, ADULT, 1), (BOX, CHILD, 2)), dets()) == []


def test_issues_below_min_score_are_not_reported(taxset):
    pred = dets((FAR, 0.25, CAR), ([0, 0, 30, 30], 0.35, TRUCK))
    issues = check(taxset, "customer_b", labels(), pred, LintConfig(min_score=0.3))
    assert [i.model_class for i in issues] == ["truck"]


@pytest.mark.parametrize("kwargs", [{"min_score": 1.5}, {"match_iou": -0.1},
                                    {"bad_box_iou": 0.6, "match_iou": 0.5}])
def test_lint_config_refuses_thresholds_out_of_range(kwargs):
    with pytest.raises(ConfigError):
        LintConfig(**kwargs)
