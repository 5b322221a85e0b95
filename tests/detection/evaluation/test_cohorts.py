"""Drift cohorts: images grouped by an image field, each group scored by the one evaluator."""

import numpy as np
import pytest

from taxdet.detection.evaluation import evaluate
from taxdet.detection.evaluation.cohorts import (
    NONE,
    UNPARSED,
    evaluate_cohorts,
    group_images,
    month_of,
)
from taxdet.detection.evaluation.scope import subset_coco
from tests.detection.evaluation.eval_cases import (
    coco_gt,
    det,
    random_case,
    reference_eval,
    stats_array,
)


@pytest.mark.parametrize("value, month", [
    ("2013-11-14 11:18:45", "2013-11"),       # COCO
    ("2024-03-05T10:00:00Z", "2024-03"),      # ISO 8601
    ("2024/3/5", "2024-03"),
    ("2024:12:31 23:59:59", "2024-12"),       # EXIF
    ("20240705", "2024-07"),
    (1709632800, "2024-03"),                  # Unix seconds: 2024-03-05 10:00 UTC
    (None, NONE),
    ("2024-13-01", UNPARSED), ("last week", UNPARSED), (True, UNPARSED), (1e300, UNPARSED),
])
def test_dates_are_grouped_by_month(value, month):
    assert month_of(value) == month


def test_cohorts_are_sorted_with_missing_fields_last():
    imgs = [{"id": 1, "date_captured": "2024-10-02"}, {"id": 2}, {"id": 3, "date_captured": "x"},
            {"id": 4, "date_captured": "2024-02-28"}, {"id": 5, "date_captured": "2024-10-30"}]
    assert group_images(imgs, "date_captured") == {
        "2024-02": [4], "2024-10": [1, 5], UNPARSED: [3], NONE: [2]}


def test_any_field_groups_by_value_and_numbers_sort_numerically():
    imgs = [{"id": 1, "site": 10}, {"id": 2, "site": 9}, {"id": 3, "site": None},
            {"id": 4, "site": 10}, {"id": 5, "site": [1, 2]}]
    assert group_images(imgs, "site") == {"9": [2], "10": [1, 4], "[1,2]": [5], NONE: [3]}
    assert group_images([{"id": 1, "seen": "2023-01-09"}], "seen:month") == {"2023-01": [1]}


def test_each_cohort_equals_pycocotools_on_its_images(engine):
    gt, preds = random_case(3, n_images=12)
    for i, img in enumerate(gt["images"]):
        if i % 4:
            img["date_captured"] = f"2024-0{1 + i % 3}-15"
    whole = evaluate(gt, preds, engine=engine)
    report = evaluate_cohorts(gt, preds, "date_captured", whole, engine=engine)
    groups = group_images(gt["images"], "date_captured")
    assert [c.name for c in report.cohorts] == ["2024-01", "2024-02", "2024-03", NONE]
    for cohort in report.cohorts:
        ids = set(groups[cohort.name])
        ref = reference_eval(subset_coco(gt, list(ids)), [p for p in preds if p["image_id"] in ids])
        assert cohort.images == len(ids)
        assert np.abs(stats_array(cohort.result.stats) - ref.stats).max() <= 1e-9


def test_cohorts_keep_the_view_of_the_whole_evaluation(driving, engine):
    # super-taxonomy names, two taxonomies: federated; the car box on customer_a's image is
    # dropped there (customer_a does not label car) in the cohort as in the whole
    images = [(1, 100, 100, {"taxonomy": "customer_a"}), (2, 100, 100, {"taxonomy": "customer_b"})]
    gt = coco_gt(images, [(1, "person"), (5, "car")],
                 [(1, 1, (10, 10, 20, 40)), (1, 5, (50, 50, 30, 20)), (2, 5, (50, 50, 30, 20))])
    preds = [det(1, 1, (10, 10, 20, 40), 0.9), det(2, 5, (50, 50, 30, 20), 0.8)]
    whole = evaluate(gt, preds, taxset=driving, engine=engine)
    report = evaluate_cohorts(gt, preds, "taxonomy", whole, taxset=driving, engine=engine)
    assert whole.mode == report.mode == "federated"
    assert [(c.name, c.images, c.result.mode) for c in report.cohorts] == [
        ("customer_a", 1, "federated"), ("customer_b", 1, "federated")]
    assert [c.result.stats["AP"] for c in report.cohorts] == pytest.approx([1.0, 1.0])
    assert report.cohorts[0].result.counts["gt_boxes_of_unlabeled_classes"] == 1


def test_report_table_json_and_metric_series():
    gt = coco_gt([(1, 50, 50, {"taxonomy": "a"}), (2, 50, 50)], [(1, "x")],
                 [(1, 1, (0, 0, 10, 10)), (2, 1, (5, 5, 10, 10))])
    preds = [det(1, 1, (0, 0, 10, 10), 0.9)]
    whole = evaluate(gt, preds, engine="pycocotools")
    report = evaluate_cohorts(gt, preds, "taxonomy", whole, engine="pycocotools")
    # cohort a: its one box found (AP 1); (none): its one box missed (AP 0)
    assert report.metric("AP") == pytest.approx([1.0, 0.0])
    rows = report.format_table().splitlines()
    assert rows[0] == "Cohorts by taxonomy, plain"
    assert rows[2].split() == ["a", "1", "1", "1", "1.000", "1.000", "1.000", "1.000"]
    assert rows[3].split() == ["(none)", "1", "1", "0", "0.000", "0.000", "0.000", "0.000"]
    data = report.to_dict()
    assert data["key"] == "taxonomy" and data["cohorts"]["a"]["images"] == 1
    assert data["cohorts"]["(none)"]["AP"] == 0.0
    assert "| (none) | 1 | 1 | 0 |" in report.to_markdown()
