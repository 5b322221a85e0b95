"""Federated scoring: each class only on the images whose taxonomy labels it; super-taxonomy
ground truth matched by name and expanded to ancestors; per-taxonomy tables."""

import numpy as np
import pytest

from taxdet.detection.evaluation import NO_GT, CocoArrays, evaluate, summarize
from tests.detection.evaluation.eval_cases import (
    coco_gt,
    det,
    random_case,
    reference_eval,
    stats_array,
)

# driving columns: person 0, pedestrian_adult 1, pedestrian_child 2, vehicle 3, car 4, truck 5,
# traffic_light 6 -> prediction category id = column + 1
PERSON, ADULT, CHILD, VEHICLE, CAR, TRUCK, LIGHT = range(1, 8)
P, C, H, CAR2, V, L = ((10, 10, 40, 90), (100, 100, 120, 60), (300, 50, 40, 90),
                       (400, 300, 120, 60), (50, 200, 120, 60), (500, 20, 20, 50))


def driving_scene():
    """Three images, one per customer, categories named as super classes with other ids.

    1 (customer_b): adult P, car C.   2 (customer_a): person H, an unlabeled car CAR2.
    3 (customer_c): vehicle V (a car), traffic light L.
    """
    cats = [(10, "car"), (20, "pedestrian_adult"), (30, "person"), (40, "vehicle"),
            (50, "traffic_light"), (60, "pedestrian_child"), (70, "truck")]
    images = [(1, 640, 480, {"taxonomy": "customer_b"}), (2, 640, 480, {"taxonomy": "customer_a"}),
              (3, 640, 480, {"taxonomy": "customer_c"})]
    gt = coco_gt(images, cats, [(1, 20, P), (1, 10, C), (2, 30, H), (3, 40, V), (3, 50, L)])
    preds = [det(1, ADULT, P, 0.9), det(1, PERSON, P, 0.9), det(1, CAR, C, 0.8),
             det(1, VEHICLE, C, 0.85),                      # right, but B does not label vehicle
             det(2, PERSON, H, 0.9),                        # A labels person only:
             det(2, CAR, CAR2, 0.95), det(2, VEHICLE, CAR2, 0.95),
             det(3, VEHICLE, V, 0.7), det(3, LIGHT, L, 0.6), det(3, CAR, V, 0.9)]  # C: no car label
    return gt, preds


def test_correct_unlabeled_detections_do_not_lower_federated_ap(driving, engine):
    gt, preds = driving_scene()
    fed = evaluate(gt, preds, taxset=driving, engine=engine)
    assert fed.mode == "federated"
    aps = {c.name: c.ap for c in fed.per_class}
    for name in ("person", "pedestrian_adult", "vehicle", "car", "traffic_light"):
        assert aps[name] == pytest.approx(1.0, abs=1e-15)
    assert fed.stats["AP"] == pytest.approx(1.0, abs=1e-15)
    # dropped: vehicle on image 1, car + vehicle on image 2, car on image 3
    assert fed.counts["predictions_on_unlabeled_images"] == 4


def test_plain_view_punishes_the_same_unlabeled_detections(driving, engine):
    gt, preds = driving_scene()
    plain = evaluate(gt, preds, taxset=driving, federated=False, engine=engine)
    assert plain.mode == "plain"
    aps = {c.name: c.ap for c in plain.per_class}
    # vehicle by score: 0.95 FP (img 2), 0.85 FP (img 1), 0.7 TP -> precision 1/3 at recall 1,
    # interpolated 1/3 at all 101 recall points -> AP = 1/3 (car likewise: 0.95, 0.9 FP; 0.8 TP)
    assert aps["vehicle"] == pytest.approx(1 / 3, abs=1e-12)
    assert aps["car"] == pytest.approx(1 / 3, abs=1e-12)
    assert plain.stats["AP"] < 0.99


def test_super_ground_truth_matched_by_name_and_expanded_to_labeled_ancestors(driving, engine):
    gt, preds = driving_scene()
    r = evaluate(gt, preds, taxset=driving, engine=engine)
    by = {c.name: c for c in r.per_class}
    # adult P on a customer_b image is also a person (B labels person: exhaustive over both
    # pedestrians); car C is not a vehicle there (B does not label vehicle) -> 1 added box
    assert r.counts["gt_boxes_added_for_ancestors"] == 1
    assert (by["person"].gt_boxes, by["vehicle"].gt_boxes, by["car"].gt_boxes) == (2, 1, 1)
    assert (by["person"].images, by["vehicle"].images, by["car"].images) == (2, 1, 1)
    assert by["pedestrian_child"].note == NO_GT and by["truck"].note == NO_GT
    assert [c.category_id for c in r.per_class] == list(range(1, 8))  # column + 1, not file ids


def test_per_taxonomy_tables_use_its_images_and_labeled_classes(driving, engine):
    gt, preds = driving_scene()
    tables = {t.name: t for t in evaluate(gt, preds, taxset=driving, engine=engine).per_taxonomy}
    assert [c.name for c in tables["customer_a"].per_class] == ["person"]
    assert [c.name for c in tables["customer_c"].per_class] == ["vehicle", "traffic_light"]
    assert [c.name for c in tables["customer_b"].per_class] == [
        "person", "pedestrian_adult", "pedestrian_child", "car", "truck"]
    assert tables["customer_a"].images == 1
    assert tables["customer_c"].stats["AP"] == pytest.approx(1.0, abs=1e-15)


TAXONOMIES = {"t_all": [], "t_no_b": ["class_5"], "t_only_b": ["class_2", "class_8", "class_11"]}


def federated_case(seed):
    """random_case with images split over three taxonomies; boxes of missing classes removed."""
    gt, preds = random_case(seed, n_images=30)
    names = list(TAXONOMIES)
    for img in gt["images"]:
        img["taxonomy"] = names[img["id"] % 3]
        img["missing_classes"] = TAXONOMIES[img["taxonomy"]]
    missing = {img["id"]: {int(n.split("_")[1]) for n in img["missing_classes"]}
               for img in gt["images"]}
    gt["annotations"] = [a for a in gt["annotations"]
                         if a["category_id"] not in missing[a["image_id"]]]
    return gt, preds, missing


def per_class_reference(gt, preds, images_of):
    """The federated definition, class by class: pycocotools with catIds=[c] and imgIds = the
    images labeling c; then COCO's means over the stacked per-class arrays."""
    cats = sorted(c["id"] for c in gt["categories"])
    parts = [reference_eval(gt, preds, img_ids=images_of(c), cat_ids=[c]).eval for c in cats]
    arrays = CocoArrays(np.concatenate([e["precision"] for e in parts], axis=2),
                        np.concatenate([e["recall"] for e in parts], axis=1), cats)
    return stats_array(summarize(arrays)), arrays


@pytest.mark.parametrize("seed", range(3))
def test_federated_equals_per_class_cocoeval_on_labeling_images(engine, seed):
    gt, preds, missing = federated_case(seed)
    ref, arrays = per_class_reference(
        gt, preds, lambda c: [i for i, m in missing.items() if c not in m])
    r = evaluate(gt, preds, engine=engine)
    assert r.mode == "federated" and r.counts["predictions_on_unlabeled_images"] > 0
    assert np.abs(stats_array(r.stats) - ref).max() <= 1e-9
    assert np.abs(r.arrays.precision - arrays.precision).max() <= 1e-9


@pytest.mark.parametrize("seed", range(2))
def test_federated_per_taxonomy_equals_cocoeval_restricted(engine, seed):
    gt, preds, missing = federated_case(seed)
    r = evaluate(gt, preds, engine=engine)
    all_cats = {c["id"] for c in gt["categories"]}
    for t in r.per_taxonomy:
        imgs = [img["id"] for img in gt["images"] if img["taxonomy"] == t.name]
        cats = sorted(all_cats - missing[imgs[0]])
        ref = reference_eval(gt, preds, img_ids=imgs, cat_ids=cats)
        assert [c.category_id for c in t.per_class] == cats
        assert np.abs(stats_array(t.stats) - ref.stats).max() <= 1e-9


@pytest.mark.parametrize("seed", range(2))
def test_federated_equals_plain_when_every_image_labels_every_class(engine, seed):
    gt, preds = random_case(seed)
    for img in gt["images"]:
        img["missing_classes"] = []
    ref = reference_eval(gt, preds).stats
    fed = evaluate(gt, preds, federated=True, engine=engine)
    assert fed.mode == "federated" and fed.counts["predictions_on_unlabeled_images"] == 0
    assert np.abs(stats_array(fed.stats) - ref).max() <= 1e-9
    assert evaluate(gt, preds, engine=engine).mode == "plain"  # auto: nothing missing


def test_ground_truth_of_a_class_marked_missing_is_dropped_and_reported(engine):
    gt = coco_gt([(1, 640, 480, {"missing_classes": ["truck"]}), (2, 640, 480)],
                 [(1, "car"), (2, "truck")],
                 [(1, 1, (10, 10, 50, 50)), (1, 2, (100, 100, 50, 50)), (2, 2, (10, 10, 50, 50))])
    r = evaluate(gt, [det(2, 2, (10, 10, 50, 50), 0.9), det(1, 1, (10, 10, 50, 50), 0.9)],
                 engine=engine)
    assert r.counts["gt_boxes_of_unlabeled_classes"] == 1
    assert any("marks missing" in w for w in r.warnings)
    truck = r.per_class[1]
    assert (truck.gt_boxes, truck.images) == (1, 1)
    assert truck.ap == pytest.approx(1.0, abs=1e-15)
