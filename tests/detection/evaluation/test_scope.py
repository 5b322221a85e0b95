"""What is scored: predictions in customers' own image ids on super.json, the hints when ids
do not fit, and predictions outside a run's split side."""

import json

import pytest

from taxdet.detection.evaluation import EvalInputError
from taxdet.detection.evaluation.scope import ground_truth_scope, scoped_predictions
from taxdet.detection.evaluation.source_ids import to_super_ids
from tests.detection.evaluation.eval_cases import coco_gt, det


def super_gt():
    """A super.json-like ground truth: customer_a's images 7, 8 (super ids 1, 2) and
    customer_b's images 7, 9 (super ids 3, 4) from two files of b."""
    def img(i, tax, src, file):
        return (i, 100, 100, {"taxonomy": tax, "source_image_id": src, "source_file": file,
                              "content_hash": f"h{i}"})
    return coco_gt([img(1, "customer_a", 7, "/d/a.json"), img(2, "customer_a", 8, "/d/a.json"),
                    img(3, "customer_b", 7, "/d/b1.json"), img(4, "customer_b", 9, "/d/b2.json")],
                   [(1, "person")], [(i, 1, (10, 10, 20, 20)) for i in (1, 2, 3, 4)])


def test_customer_image_ids_become_super_ids():
    preds = [det(7, 1, (10, 10, 20, 20), 0.9), det(8, 1, (0, 0, 5, 5), 0.5), "not a record"]
    out = to_super_ids(preds, super_gt()["images"], "customer_a", "super.json", "p.json")
    assert [p["image_id"] for p in out[:2]] == [1, 2] and out[2] == "not a record"
    assert preds[0]["image_id"] == 7                           # the input is not modified


def test_an_owner_can_be_named_by_its_annotation_file():
    out = to_super_ids([det(9, 1, (1, 1, 2, 2), 0.5)], super_gt()["images"], "/d/b2.json",
                       "super.json", "p.json")
    assert out[0]["image_id"] == 4


@pytest.mark.parametrize("owner, preds, message", [
    ("customer_b", [], r"'customer_b' has several annotation files sharing image id 7 .*"
                       r"name one file instead \(/d/b1.json, /d/b2.json\)"),
    ("Customer-A", [], r"no image comes from 'Customer-A' .*did you mean 'customer_a'\?"),
    ("customer_a", [det(9, 1, (1, 1, 2, 2), 0.5)],
     r"p.json: prediction \[0\]: image_id 9 is not an image of 'customer_a'"),
])
def test_source_id_errors_say_what_to_do(owner, preds, message):
    gt = super_gt()
    if owner == "customer_b":                                   # b's two files share id 7
        gt["images"][3]["source_image_id"] = 7
    with pytest.raises(EvalInputError, match=message):
        to_super_ids(preds, gt["images"], owner, "super.json", "p.json")


def test_source_ids_need_a_super_dataset():
    gt = coco_gt([(1, 10, 10)], [(1, "x")], [])
    with pytest.raises(EvalInputError, match="no source_image_id: source ids need a super-dat"):
        to_super_ids([], gt["images"], "customer_a", "gt.json", "p.json")


def test_unknown_image_ids_that_are_customer_ids_get_a_hint():
    scope = ground_truth_scope(super_gt())
    preds = [det(7, 1, (10, 10, 20, 20), 0.9), det(9, 1, (10, 10, 20, 20), 0.9)]
    with pytest.raises(EvalInputError) as err:
        scoped_predictions(scope, preds, "p.json", {1})
    assert str(err.value).endswith("they look like customer image ids (source_image_id) of "
                                   "customer_b: pass --source-ids customer_b")


def test_known_ids_that_are_one_customers_own_ids_on_others_images_give_a_warning():
    two_b = [det(3, 1, (1, 1, 2, 2), 0.5), det(4, 1, (1, 1, 2, 2), 0.5)]
    scope = ground_truth_scope(super_gt())
    scoped_predictions(scope, two_b, "p.json", {1})
    assert scope.warnings == []                                 # 3, 4 are nobody's own ids
    gt = super_gt()
    gt["images"][0]["source_image_id"], gt["images"][1]["source_image_id"] = 3, 4
    scope = ground_truth_scope(gt)
    scoped_predictions(scope, two_b, "p.json", {1})
    # 3, 4 are customer_a's own ids, and as super ids they are customer_b's images
    assert scope.warnings == [
        "the predictions' image ids are all own image ids (source_image_id) of customer_a but, "
        "read as the ground truth's ids, fall on other customers' images; if they are a "
        "customer's own ids, pass --source-ids customer_a"]
    scope = ground_truth_scope(gt)
    scoped_predictions(scope, [det(1, 1, (1, 1, 2, 2), 0.5)], "p.json", {1})
    assert scope.warnings == []                                 # 1 is nobody's own id


def test_super_taxonomy_category_ids_get_a_taxonomies_hint():
    scope = ground_truth_scope(coco_gt([(1, 10, 10)], [(1, "Human"), (2, "Dog")], []))
    with pytest.raises(EvalInputError, match=r"category_id not in the ground truth: 5 .*pass "
                                             r"--taxonomies"):
        scoped_predictions(scope, [det(1, 5, (1, 1, 2, 2), 0.5)], "p.json", {1, 2},
                           taxonomies_given=False)


def test_predictions_outside_the_split_side_are_dropped_and_counted(tmp_path):
    split = {"format": 1, "val_fraction": 0.5, "salt": "s", "by": "content",
             "train": [{"id": 1, "file_name": "1.png", "content_hash": "h1"}],
             "val": [{"id": i, "file_name": f"{i}.png", "content_hash": f"h{i}"}
                     for i in (2, 3)]}
    (tmp_path / "split.json").write_text(json.dumps(split))
    scope = ground_truth_scope(super_gt(), tmp_path, "val")
    assert [img["id"] for img in scope.gt["images"]] == [2, 3]
    assert [a["image_id"] for a in scope.gt["annotations"]] == [2, 3]
    preds = [det(i, 1, (10, 10, 20, 20), 0.9) for i in (1, 2, 3, 4)]
    assert [p["image_id"] for p in scoped_predictions(scope, preds, "p.json", {1})] == [2, 3]
    assert scope.notes[-1] == "2 of 4 predictions are on images outside the selection: not scored"
    assert scope.split["found"] == 2 and scope.split["matched_by"] == "content_hash"
