"""The lint benchmark's parts: seeded error injection, hit rules, precision / recall at k,
AUROC, and cleanlab's inputs (no model)."""

from __future__ import annotations

import numpy as np
import pytest

from benchmarks.label_noise import InjectedError, NoiseConfig, inject, moved_box
from benchmarks.lint_cleanlab import cleanlab_inputs
from benchmarks.lint_scoring import ErrorIndex, Flag, auroc, box_precision_at, precision_recall_at_k
from taxdet.datasets.sample import Sample
from taxdet.detection.linting import ImagePredictions
from taxdet.detection.linting.matching import box_iou


def coco(n_images: int = 50, per_image: int = 4) -> dict:
    """Customer B's own labels: 4 categories, boxes spread over 256 px images."""
    cats = [{"id": i + 1, "name": n} for i, n in
            enumerate(["Pedestrian_adult", "Pedestrian_child", "Car", "Truck"])]
    images = [{"id": i + 1, "file_name": f"{i}.jpg", "width": 256, "height": 256}
              for i in range(n_images)]
    anns = [{"id": i * per_image + j + 1, "image_id": i + 1,
             "category_id": j % 4 + 1, "bbox": [10.0 + 60 * j, 20.0, 40.0, 80.0], "area": 3200.0,
             "iscrowd": 0} for i in range(n_images) for j in range(per_image)]
    return {"images": images, "annotations": anns, "categories": cats}


def xyxy(b):
    return np.array([[b[0], b[1], b[0] + b[2], b[1] + b[3]]])


def test_injection_makes_the_asked_shares_of_disjoint_errors(taxset):
    clean = coco()                                    # 200 boxes
    noisy, errors = inject(clean, taxset.taxonomy("customer_b"), NoiseConfig(seed=3))
    count = {t: sum(e.type == t for e in errors) for t in
             ("missing_box", "wrong_class", "bad_box", "duplicate_box")}
    assert count == {"missing_box": 10, "wrong_class": 6, "bad_box": 6, "duplicate_box": 2}
    touched = [e.ann_id if e.type != "duplicate_box" else e.other_ann_id for e in errors]
    assert len(set(touched)) == len(touched)                          # one error per box
    assert len(noisy["annotations"]) == 200 - 10 + 2
    by_id = {a["id"]: a for a in noisy["annotations"]}
    for e in errors:
        if e.type == "missing_box":
            assert e.ann_id not in by_id
        elif e.type == "wrong_class":
            assert e.new_label != e.label
        elif e.type == "bad_box":
            assert 0.15 <= box_iou(xyxy(by_id[e.ann_id]["bbox"]), xyxy(e.orig_box))[0, 0] <= 0.45
        else:
            assert box_iou(xyxy(by_id[e.ann_id]["bbox"]), xyxy(e.orig_box))[0, 0] >= 0.9
    assert clean["annotations"][0]["bbox"] == [10.0, 20.0, 40.0, 80.0]     # input untouched
    assert inject(clean, taxset.taxonomy("customer_b"), NoiseConfig(seed=3))[1] == errors


def test_a_customer_with_one_mapped_label_gets_no_relabeling(taxset):
    a = coco()
    a["categories"] = [{"id": 1, "name": "Human"}, {"id": 2, "name": "Dog"}]
    for ann in a["annotations"]:
        ann["category_id"] = 1 + (ann["id"] % 2)          # half dogs (maps_to: null): not used
    _, errors = inject(a, taxset.taxonomy("customer_a"), NoiseConfig())
    assert not any(e.type == "wrong_class" for e in errors)
    assert all(e.label == "Human" for e in errors)


def test_moved_box_stays_in_the_image_within_the_iou_band():
    rng = np.random.default_rng(0)
    for _ in range(20):
        new = moved_box(rng, [200.0, 200.0, 50.0, 50.0], 256, 256, (0.2, 0.4))
        assert new[0] >= 0 and new[0] + new[2] <= 256 and new[1] + new[3] <= 256
        assert 0.2 <= box_iou(xyxy(new), xyxy([200, 200, 50, 50]))[0, 0] <= 0.4


ERRORS = [InjectedError("missing_box", "b", 1, 10, [0, 0, 10, 10], [0, 0, 10, 10], "Car"),
          InjectedError("bad_box", "b", 1, 11, [50, 50, 10, 10], [40, 40, 10, 10], "Car"),
          InjectedError("duplicate_box", "b", 2, 30, [0, 0, 9, 9], [0, 0, 9, 9], "Car",
                        other_ann_id=3)]


def test_flags_hit_errors_of_their_type_or_any_type():
    index = ErrorIndex(ERRORS)
    covers_drop = Flag("missing_box", 0.9, "b", 1, box=[1, 0, 10, 10])   # IoU 90 / 110 = 0.82
    at_true_place = Flag("missing_box", 0.8, "b", 1, box=[40, 40, 10, 10])
    dup_original = Flag("duplicate_box", 0.7, "b", 2, ann_id=3)
    wrong_image = Flag("bad_box", 0.6, "b", 2, ann_id=11)
    assert index.typed_hits(covers_drop) == [0] and index.typed_hits(at_true_place) == []
    assert index.any_hit(at_true_place)                # the moved box's true place: a finding
    assert index.typed_hits(dup_original) == [2] and not index.any_hit(wrong_image)


def test_precision_and_recall_at_k_count_hits_and_distinct_errors():
    index = ErrorIndex(ERRORS)
    flags = [Flag("missing_box", 0.9, "b", 1, box=[0, 0, 10, 10]),
             Flag("missing_box", 0.8, "b", 1, box=[0, 1, 10, 10]),     # the same error again
             Flag("missing_box", 0.7, "b", 1, box=[90, 90, 10, 10])]
    assert precision_recall_at_k(flags, index, "missing_box", 1) == (1.0, 1.0)
    assert precision_recall_at_k(flags, index, "missing_box", 3) == (pytest.approx(2 / 3), 1.0)
    assert box_precision_at(flags, index, 2) == 1.0


def test_auroc_counts_ties_half():
    assert auroc(np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1], bool)) == 0.75
    assert auroc(np.array([0.5, 0.5]), np.array([0, 1], bool)) == 0.5
    assert np.isnan(auroc(np.array([0.5]), np.array([1], bool)))


def test_cleanlab_inputs_split_detections_by_class_in_xyxy(taxset):
    s = Sample(5, "f", 64, 64, "customer_b", taxset.label_mask("customer_b"),
               np.array([[1, 2, 11, 22]], np.float32), np.array([4]))
    preds = {5: ImagePredictions(np.array([[0, 0, 10, 10], [5, 5, 9, 9.]]), np.array([0.9, 0.2]),
                                 np.array([4, 6]))}
    labels, predictions = cleanlab_inputs([s], preds, 7)
    assert labels[0]["bboxes"].tolist() == [[1, 2, 11, 22]] and labels[0]["labels"].tolist() == [4]
    assert [p.shape for p in predictions[0]] == [(0, 5)] * 4 + [(1, 5), (0, 5), (1, 5)]
    assert predictions[0][4].tolist() == [[0, 0, 10, 10, 0.9]]


def test_cleanlab_box_flags_name_the_boxes_and_annotations_they_score(taxset):
    pytest.importorskip("cleanlab")
    from benchmarks.lint_cleanlab import run_cleanlab
    samples = [Sample(i, "f", 256, 256, "customer_a", taxset.label_mask("customer_a"),
                      np.array([[10, 10, 50, 110]], np.float32), np.array([0]),
                      source_image_id=100 + i, source_ann_ids=np.array([7 + i]))
               for i in range(3)]
    car = [150.0, 150.0, 230.0, 190.0]     # far from the Human box: overlaps nothing
    preds = {s.image_id: ImagePredictions(np.array([[10, 12, 50, 110], car]),
                                          np.array([0.97, 0.99]), np.array([0, 4]))
             for s in samples}
    run = run_cleanlab(samples, preds, 7)
    assert run.image_scores.shape == (3,) and len(run.flagged) == len(run.flags)
    missing = [f for f in run.flags if f.type == "missing_box"]
    assert [(f.image_id, f.column, f.box) for f in missing] == [
        (100 + i, 4, [150.0, 150.0, 80.0, 40.0]) for i in range(3)]
    boxes = [f for f in run.flags if f.type != "missing_box"]
    assert {(f.image_id, f.ann_id) for f in boxes} <= {(100 + i, 7 + i) for i in range(3)}
