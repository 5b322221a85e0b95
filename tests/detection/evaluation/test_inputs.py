"""Bad input: each a clear error naming the record, or a counted warning."""

import json

import pytest

from taxdet.detection.evaluation import EvalInputError, evaluate
from tests.detection.evaluation.eval_cases import coco_gt, det

GT = coco_gt([(1, 640, 480), (2, 320, 240)], [(1, "car"), (2, "person")],
             [(1, 1, (10, 10, 50, 50)), (2, 2, (20, 20, 30, 60))])
GOOD = det(1, 1, (10, 10, 50, 50), 0.9)


@pytest.mark.parametrize("bad, message", [
    (det(99, 1, (0, 0, 5, 5), 0.5), r"image_id not in the ground truth: 99 \(first at index 1\)"),
    (det(1, 42, (0, 0, 5, 5), 0.5), r"category_id not in the ground truth: 42 \(first at index 1"),
    (det(1, 1, (0, 0, 5, 5), float("nan")), r"invalid score .* at index 1"),
    (det(1, 1, (0, 0, 5, 5), -0.1), r"invalid score .* at index 1"),
    (det(1, 1, (0, float("inf"), 5, 5), 0.5), r"invalid bbox .* at index 1"),
    (det(1, 1, (0, 0, -5, 5), 0.5), r"invalid bbox .* at index 1"),
    ({"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}, r"prediction \[1\]: missing 'score'"),
    (det(1, 1, (0, 0, 5), 0.5), r"prediction \[1\]: bbox must be 4 numbers"),
    ({**GOOD, "image_id": "1"}, r"prediction \[1\]: image_id must be an integer"),
    ({**GOOD, "score": "high"}, r"prediction \[1\]: score must be a number"),
])
def test_bad_prediction_is_an_error_naming_its_index(bad, message):
    with pytest.raises(EvalInputError, match=message):
        evaluate(GT, [GOOD, bad], engine="pycocotools")


def test_error_lists_a_few_unknown_ids_and_the_total():
    preds = [det(100 + i, 1, (0, 0, 5, 5), 0.5) for i in range(8)]
    with pytest.raises(EvalInputError, match=r"100, 101, 102, 103, 104, \.\.\. \(8 in total\)"):
        evaluate(GT, preds)


def test_predictions_not_a_list_is_an_error():
    with pytest.raises(EvalInputError, match="must be a JSON list"):
        evaluate(GT, {"annotations": []})


def test_boxes_far_outside_their_image_are_counted_as_a_warning(engine):
    # image 2 is 320 x 240; a box reaching x = 600 > 1.5 * 320 suggests another resolution
    preds = [GOOD, det(2, 2, (500, 100, 100, 50), 0.5), det(2, 2, (300, 10, 30, 30), 0.4)]
    r = evaluate(GT, preds, engine=engine)
    assert any("1 predicted boxes lie far outside their image" in w and "index 1" in w
               for w in r.warnings)


def test_ground_truth_boxes_far_outside_their_image_are_counted():
    gt = coco_gt([(1, 100, 100)], [(1, "car")],
                 [(1, 1, (10, 10, 50, 50)), (1, 1, (300, 0, 20, 20))])
    r = evaluate(gt, [])
    assert any("1 ground-truth boxes lie far outside" in w and "annotation ids 2" in w
               for w in r.warnings)


def bad_gt(change):
    gt = json.loads(json.dumps(GT))
    change(gt)
    return gt


@pytest.mark.parametrize("change, message", [
    (lambda g: g["annotations"].append({**g["annotations"][0]}), "duplicate annotation id 1"),
    (lambda g: g["annotations"][1].update(image_id=7), "annotation id 2: unknown image_id 7"),
    (lambda g: g["annotations"][1].update(category_id=5), "annotation id 2: unknown category_id 5"),
    (lambda g: g["annotations"][0].update(bbox=[0, 0, float("nan"), 3]), "annotation id 1: bbox"),
    (lambda g: g["annotations"][0].update(area="big"), "annotation id 1: area must be a finite"),
    (lambda g: g["images"][0].pop("width"), "image id 1 needs positive 'width'"),
    (lambda g: g["categories"][1].update(name="car"), "category names must be unique"),
    (lambda g: g.pop("categories"), "needs lists 'images', 'annotations' and 'categories'"),
    (lambda g: g["images"][0].update(missing_classes=["bus"]), r"missing_classes \['bus'\]"),
])
def test_bad_ground_truth_is_an_error_naming_its_record(change, message):
    with pytest.raises(EvalInputError, match=message):
        evaluate(bad_gt(change), [])


def test_unknown_image_taxonomy_is_an_error(driving):
    gt = coco_gt([(1, 640, 480, {"taxonomy": "customer_x"})], [(1, "car")], [])
    with pytest.raises(EvalInputError, match="image id 1: unknown taxonomy 'customer_x'"):
        evaluate(gt, [], taxset=driving)


def test_missing_area_is_filled_from_the_box_and_counted():
    gt = bad_gt(lambda g: g["annotations"][0].pop("area"))
    r = evaluate(gt, [GOOD])
    assert r.counts["gt_area_filled"] == 1
    assert r.per_class[0].ap == pytest.approx(1.0, abs=1e-15)


def test_missing_and_invalid_files_are_errors_naming_them(tmp_path):
    with pytest.raises(EvalInputError, match="ground truth file not found: .*nope.json"):
        evaluate(tmp_path / "nope.json", [])
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(EvalInputError, match="bad.json: not valid JSON"):
        evaluate(GT, bad)


def test_unknown_engine_is_an_error():
    with pytest.raises(ValueError, match="unknown engine 'fast'"):
        evaluate(GT, [], engine="fast")
