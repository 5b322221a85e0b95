"""taxdet.detection.evaluation.threshold_fit: greedy IoU matching and the per-class score cut."""

from __future__ import annotations

import numpy as np
import pytest

from taxdet.detection.evaluation import EvalInputError, load_ground_truth
from taxdet.detection.evaluation.threshold_fit import (
    FALLBACK,
    MIN_GT_BOXES,
    fit_thresholds,
    greedy_match,
    pick_threshold,
)


def test_greedy_match_by_score_then_best_free_overlap():
    gt = np.array([[0, 0, 10, 10], [20, 0, 10, 10]], float)
    dets = np.array([[1, 0, 10, 10],    # IoU 9/11 with gt 0: the best det takes it
                     [0, 0, 10, 10],    # exact on gt 0, but lower score: gt 0 is taken -> FP
                     [20, 5, 10, 10],   # IoU 50/150 = 0.33 with gt 1 -> FP
                     [21, 0, 10, 10]],  # IoU 0.82 with gt 1 -> TP
                    float)
    scores = np.array([0.9, 0.8, 0.95, 0.5])
    assert greedy_match(gt, dets, scores).tolist() == [True, False, False, True]
    assert greedy_match(gt[:0], dets, scores).tolist() == [False] * 4


# scores 0.9 .. 0.3, true positives marked; 4 ground-truth boxes. Cuts (kept, P, R, F1):
# 0.9 (1, 1, .25, .4)  0.8 (2, 1, .5, .667)  0.7 (3, .667, .5, .571)  0.6 (4, .75, .75, .75)
# 0.5 (5, .6, .75, .667)  0.4 (6, .5, .75, .6)  0.3 (7, .571, 1, .727)
SCORES = np.array([0.5, 0.9, 0.7, 0.3, 0.8, 0.4, 0.6])
TP = np.array([False, True, False, True, True, False, True])


def test_f1_best_cut():
    fit = pick_threshold(SCORES, TP, 4)
    assert fit.threshold == 0.6 and fit.detections == 4
    assert (fit.precision, fit.recall, fit.f1) == (0.75, 0.75, 0.75)


@pytest.mark.parametrize("target, threshold", [(0.9, 0.8), (0.7, 0.6), (0.5, 0.3), (1.0, 0.8)])
def test_lowest_cut_reaching_the_precision(target, threshold):
    assert pick_threshold(SCORES, TP, 4, precision=target).threshold == threshold


def test_unreachable_precision_or_no_match_gives_none():
    assert pick_threshold(np.array([0.9, 0.8]), np.array([False, True]), 2,
                          precision=0.9).threshold is None
    assert pick_threshold(np.array([0.9]), np.array([False]), 1).threshold is None


def test_equal_scores_are_cut_together():
    fit = pick_threshold(np.array([0.9, 0.5, 0.5]), np.array([True, False, True]), 2)
    assert fit.threshold == 0.5 and fit.detections == 3  # 0.5 keeps both ties: F1 .8 > .667


def _case():
    """Image 1: 3 cars (each matched by one detection) + 2 false positives; image 2: one
    car, matched by the 0.6 detection; a person box without detections."""
    images = [{"id": 1, "width": 100, "height": 100}, {"id": 2, "width": 100, "height": 100}]
    cars = [(1, [0, 0, 10, 10]), (1, [20, 0, 10, 10]), (1, [40, 0, 10, 10]), (2, [0, 0, 10, 10])]
    anns = [{"id": i + 1, "image_id": im, "category_id": 1, "bbox": b}
            for i, (im, b) in enumerate(cars)]
    anns.append({"id": 9, "image_id": 2, "category_id": 2, "bbox": [50, 50, 10, 10]})
    gt = {"images": images, "annotations": anns,
          "categories": [{"id": 1, "name": "car"}, {"id": 2, "name": "person"}]}
    dets = [(1, [0, 0, 10, 10], 0.9), (1, [20, 0, 10, 10], 0.8), (1, [70, 70, 9, 9], 0.7),
            (2, [0, 0, 10, 10], 0.6), (1, [80, 0, 9, 9], 0.5), (1, [60, 0, 9, 9], 0.4),
            (1, [40, 0, 10, 10], 0.3)]
    return gt, [{"image_id": i, "category_id": 1, "bbox": b, "score": s} for i, b, s in dets]


def test_fit_thresholds_on_a_constructed_case(caplog):
    gt, preds = _case()
    with caplog.at_level("WARNING"):
        fitted = fit_thresholds(load_ground_truth(gt), preds)
    # person: one box, no detections -> the documented fallback, named in a warning
    assert fitted.thresholds == {"car": 0.6, "person": FALLBACK}
    assert fitted.fit["person"]["fallback"] == f"1 ground-truth boxes, fewer than {MIN_GT_BOXES}"
    assert "person (1 ground-truth boxes" in caplog.text
    assert fitted.fit["car"]["f1"] == 0.75 and fitted.criterion == "f1"
    assert fit_thresholds(load_ground_truth(gt), preds, precision=0.9).thresholds == {
        "car": 0.8, "person": FALLBACK}


def test_every_class_with_ground_truth_gets_a_threshold_never_null(caplog):
    """An unreachable precision and a class of false positives only: the fallback, not
    null (null would silently leave the class without pre-labels)."""
    gt, preds = _case()
    with caplog.at_level("WARNING"):
        fitted = fit_thresholds(load_ground_truth(gt), preds, precision=1.0 - 1e-9)
    assert fitted.thresholds["car"] == 0.8  # 0.9 and 0.8 are both true positives
    misses = [{**p, "bbox": [90, 90, 5, 5]} for p in preds]
    fitted = fit_thresholds(load_ground_truth(gt), misses)
    assert fitted.thresholds == {"car": FALLBACK, "person": FALLBACK}
    assert fitted.fit["car"]["fallback"] == "no detection matches"
    assert None not in fitted.thresholds.values()


def test_precision_out_of_range_is_refused():
    gt, preds = _case()
    with pytest.raises(EvalInputError, match="precision"):
        fit_thresholds(load_ground_truth(gt), preds, precision=0)
