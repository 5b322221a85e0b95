"""The classification metrics against hand computations and brute-force references."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from taxdet.detection.classification import classifier_metrics as metrics
from taxdet.detection.classification.classifier_evaluation import top_n_by_class


def test_top_n_counts_the_target_among_the_n_best_overall_and_per_class():
    scores = np.array([[0.1, 0.7, 0.2],     # ranking 1, 2, 0
                       [0.5, 0.4, 0.3],     # ranking 0, 1, 2
                       [0.2, 0.2, 0.9]])    # ranking 2, 0, 1 (tie: lower index first)
    target = np.array([2, 2, 1])
    first = (metrics.ranking(scores) == target[:, None]).argmax(axis=1)
    assert first.tolist() == [1, 2, 2]
    overall, per_class = top_n_by_class(first, target, {1: "b", 2: "c"}, 3)
    assert overall == {1: 0.0, 2: pytest.approx(1 / 3), 3: 1.0}
    assert per_class["c"] == {"images": 2, "top_n": {1: 0.0, 2: 0.5, 3: 1.0}}


def test_confusion_counts_rows_true_columns_predicted():
    c = metrics.confusion(np.array([0, 0, 1, 2, 2]), np.array([0, 1, 1, 2, 0]), 3)
    assert c.tolist() == [[1, 1, 0], [0, 1, 0], [1, 0, 1]]


def test_ece_by_hand():
    # 2 bins: (0, .5] holds 0.2, 0.4 (both wrong) and (.5, 1] holds 0.9, 0.9, 0.6 (2 right)
    conf = np.array([0.2, 0.4, 0.9, 0.9, 0.6])
    right = np.array([False, False, True, True, False])
    ece, bins = metrics.calibration(conf, right, bins=2)
    # bin 1: |0 - 0.3| * 2/5 = 0.12; bin 2: |2/3 - 0.8| * 3/5 = 0.08
    assert ece == pytest.approx(0.12 + 0.08)
    assert bins["count"] == [2, 3] and bins["accuracy"] == pytest.approx([0.0, 2 / 3])
    assert bins["confidence"] == pytest.approx([0.3, 0.8])


def test_a_perfectly_calibrated_model_has_zero_ece_and_empty_bins_are_nan():
    conf = np.array([1.0, 1.0, 0.5, 0.5])
    ece, bins = metrics.calibration(conf, np.array([True, True, True, False]), bins=4)
    assert ece == 0.0
    assert np.isnan(bins["accuracy"][0]) and bins["count"] == [0, 2, 0, 2]


def brute_auroc(pos, neg) -> float:
    """Mann-Whitney by enumeration of every pair (ties: one half)."""
    pairs = list(itertools.product(pos, neg))
    return sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in pairs) / len(pairs)


def test_auroc_matches_pair_counting_with_ties():
    rng = np.random.default_rng(0)
    for _ in range(20):
        pos = rng.integers(0, 6, rng.integers(1, 9)).astype(float)
        neg = rng.integers(0, 6, rng.integers(1, 9)).astype(float)
        assert metrics.auroc(pos, neg) == pytest.approx(brute_auroc(pos, neg))
    assert metrics.auroc([3.0, 4.0], [1.0, 2.0]) == 1.0
    assert metrics.auroc([1.0], [1.0]) == 0.5
    assert metrics.auroc([], [1.0]) is None


def test_fpr_at_95_tpr_by_hand():
    ids = np.arange(1, 21, dtype=float)   # 20 ID scores 1..20: 95 % = 19 accepted, threshold 2
    ood = np.array([0.5, 1.5, 2.0, 2.5, 30.0])
    assert metrics.fpr_at_tpr(ids, ood) == pytest.approx(3 / 5)   # 2.0, 2.5 and 30 accepted
    assert metrics.fpr_at_tpr(ids, np.array([0.0, 1.0])) == 0.0
    assert metrics.fpr_at_tpr(ids, []) is None


def test_ood_scores_by_hand():
    logits = np.array([[0.0, np.log(3.0)], [2.0, 2.0]])
    s = metrics.ood_scores(logits)
    assert s["max_softmax"] == pytest.approx([0.75, 0.5])      # 3 / (1 + 3), 1 / 2
    assert s["max_logit"] == pytest.approx([np.log(3.0), 2.0])
    assert s["energy"] == pytest.approx([np.log(4.0), 2.0 + np.log(2.0)])
    big = metrics.ood_scores(np.array([[1000.0, 1000.0]]))      # stable: no overflow
    assert big["energy"] == pytest.approx([1000.0 + np.log(2.0)])
