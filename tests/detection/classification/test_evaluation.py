"""Scoring hand-made logits: the customer view, the super view (descendants count), calibration
confidences and the OOD scores, checked by hand."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taxdet.datasets.classification_data import OOD, ClassificationSample
from taxdet.detection.classification import classifier_metrics as metrics
from taxdet.detection.classification.classifier_evaluation import CustomerView, evaluate_logits


def sample(taxset, i: int, taxonomy: str, column: str | None) -> ClassificationSample:
    col = OOD if column is None else taxset.super.column[column]
    return ClassificationSample(i, f"{i}.png", taxonomy, "", col, taxset.label_mask(taxonomy))


def logits_for(taxset, **high: float) -> np.ndarray:
    """[K] logits: 0 everywhere, ``name=value`` where given."""
    row = np.zeros(taxset.num_classes)
    for name, value in high.items():
        row[taxset.super.column[name]] = value
    return row


@pytest.fixture
def scored(taxset):
    samples = [sample(taxset, 1, "customer_a", "person"),
               sample(taxset, 2, "customer_b", "pedestrian_child"),
               sample(taxset, 3, "customer_b", "car"),
               sample(taxset, 4, "customer_c", "traffic_light")]
    logits = np.stack([
        logits_for(taxset, pedestrian_child=5.0, person=1.0),   # a finer answer than Human
        logits_for(taxset, pedestrian_child=4.0, person=6.0),   # b: child right (person not b's)
        logits_for(taxset, truck=3.0, car=2.0),                 # b: wrong, right at top-2
        logits_for(taxset, traffic_light=2.0)])
    ood = np.stack([logits_for(taxset, car=-1.0), logits_for(taxset)])
    return samples, logits, ood


def test_the_customer_view_scores_each_taxonomy_in_its_own_labels(taxset, scored):
    samples, logits, ood = scored
    result = evaluate_logits(logits, samples, ood, taxset, taxset.masks.any(axis=0),
                             sigmoid=False)
    a, b, c = result.tasks
    assert (a.classes, a.top_n) == (["Human"], {1: 1.0})
    assert b.classes == ["Pedestrian_adult", "Pedestrian_child", "Car", "Truck"]
    assert b.top_n == {1: 0.5, 2: 1.0, 3: 1.0, 4: 1.0}
    assert b.per_class["Car"] == {"images": 1, "top_n": {1: 0.0, 2: 1.0, 3: 1.0, 4: 1.0}}
    assert b.confusion[2] == [0, 0, 0, 1]   # the car was called a truck
    assert c.top_n[1] == 1.0
    assert result.headline()["accuracy"] == pytest.approx((1 + 0.5 + 1) / 3)


def test_the_super_view_counts_a_descendant_of_the_target_as_right(taxset, scored):
    samples, logits, ood = scored
    result = evaluate_logits(logits, samples, ood, taxset, taxset.masks.any(axis=0), False)
    # 1: child for person -> right; 2: person first for a child -> wrong at 1, right at 2;
    # 3: truck, then car -> right at 2; 4: light -> right
    assert result.super_top_n[1] == pytest.approx(2 / 4)
    assert result.super_top_n[2] == 1.0
    assert result.super_per_class["person"]["top_n"][1] == 1.0
    assert result.super_per_class["pedestrian_child"]["top_n"] == {1: 0.0, 2: 1.0, 3: 1.0,
                                                                   4: 1.0, 5: 1.0}


def test_confidences_are_softmax_over_the_customer_columns_or_the_top_sigmoid(taxset, scored):
    samples, logits, ood = scored
    soft = evaluate_logits(logits, samples, ood, taxset, taxset.masks.any(axis=0), False)
    sig = evaluate_logits(logits, samples, ood, taxset, taxset.masks.any(axis=0), True)
    b_scores = logits[1:3][:, CustomerView.of(taxset, "customer_b").columns]
    assert soft.tasks[1].confidence == pytest.approx(metrics.softmax(b_scores).max(axis=1))
    assert sig.tasks[1].confidence == pytest.approx(1 / (1 + np.exp(-b_scores.max(axis=1))))
    assert soft.tasks[0].confidence.tolist() == [1.0]  # one class: a softmax is always sure


def test_ood_scores_use_the_trained_columns_against_the_ood_images(taxset, scored):
    samples, logits, ood = scored
    trained = taxset.masks.any(axis=0)
    result = evaluate_logits(logits, samples, ood, taxset, trained, False)
    want = metrics.auroc(logits.max(axis=1), ood.max(axis=1))
    assert result.ood["max_logit"]["AUROC"] == pytest.approx(want) and want == 1.0
    per_b = result.ood["per_taxonomy"]["customer_b"]["energy"]["AUROC"]
    assert per_b == metrics.auroc(metrics.logsumexp(logits[1:3]), metrics.logsumexp(ood))
    only_light = np.zeros_like(trained)
    only_light[taxset.super.column["traffic_light"]] = True  # a model trained on lights only
    narrow = evaluate_logits(logits, samples, ood, taxset, only_light, False)
    assert narrow.ood["max_logit"]["AUROC"] == metrics.auroc(
        logits[:, only_light].max(axis=1), ood[:, only_light].max(axis=1))


def test_json_and_markdown_hold_every_view(taxset, scored):
    samples, logits, ood = scored
    result = evaluate_logits(logits, samples, ood, taxset, taxset.masks.any(axis=0), False)
    doc = json.loads(json.dumps(result.to_dict()))
    assert doc["per_taxonomy"]["customer_b"]["top_n"]["2"] == 1.0
    assert set(doc["ood"]) == {"max_softmax", "max_logit", "energy", "per_taxonomy"}
    assert doc["counts"] == {"images": 4, "ood_images": 2}
    md = result.to_markdown()
    assert "| customer_b | 2 | 4 | 0.500 | 1.000 |" in md and "| max_logit | 1.000 |" in md


def test_no_ood_images_is_a_warning_not_a_crash(taxset, scored):
    samples, logits, _ = scored
    result = evaluate_logits(logits, samples, logits[:0], taxset, taxset.masks.any(axis=0),
                             False)
    assert result.headline()["AUROC_max_logit"] is None
    assert any("no OOD images" in w for w in result.warnings)
