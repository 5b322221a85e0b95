"""taxdet.detection.prediction.customer_labels and prelabels: customer ids and names, parent
columns, labels not predicted; the scored COCO file and reading it back."""

from __future__ import annotations

import json

import pytest

import taxdet.supertax as supertax
from taxdet.core.errors import InputError
from taxdet.datasets.coco_io import CocoFormatError
from taxdet.datasets.demo import copy_taxonomies
from taxdet.detection.prediction.customer_labels import (
    CategoryIdsError,
    TrainingTaxonomies,
    customer_id_space,
    customer_labels,
    super_labels,
)
from taxdet.detection.prediction.prelabels import (
    coco_prelabels,
    match_file_names,
    own_image_ids,
    results_from_coco,
)
from tests.factories import make_tiny_taxonomies
from tests.paths import DRIVING

# driving columns: person 0, pedestrian_adult 1, pedestrian_child 2, vehicle 3, car 4, truck 5,
# traffic_light 6


def _res(image_id, column, score=0.9):
    return {"image_id": image_id, "category_id": column + 1, "bbox": [1, 2, 3, 4], "score": score}


def test_super_labels_are_columns_plus_one_with_parents(driving):
    space = super_labels(driving)
    assert space.names == {j + 1: n for j, n in enumerate(driving.names)}
    cats = space.categories()
    assert cats[1] == {"id": 2, "name": "pedestrian_adult", "supercategory": "person"}
    assert space.relabel([_res(1, 4)]) == [_res(1, 4)] and space.not_predicted == []


def test_customer_ids_come_from_its_file_by_name(driving, tmp_path):
    (tmp_path / "b.json").write_text(json.dumps({"images": [], "annotations": [], "categories": [
        {"id": 7, "name": "Truck"}, {"id": 3, "name": "Car"}, {"id": 9, "name": "Other"},
        {"id": 12, "name": "Pedestrian_child"}, {"id": 11, "name": "Pedestrian_adult"}]}))
    space = customer_labels(driving, "customer_b", tmp_path / "b.json")
    assert space.names == {11: "Pedestrian_adult", 12: "Pedestrian_child", 3: "Car", 7: "Truck"}
    assert space.ids_from == str(tmp_path / "b.json") and space.own_ids
    assert space.relabel([_res(1, 5), _res(1, 4), _res(2, 0), _res(2, 1)]) == [
        {**_res(1, 5), "category_id": 7}, {**_res(1, 4), "category_id": 3},
        {**_res(2, 1), "category_id": 11}]  # person (column 0) is no label of B


def test_a_file_lacking_the_customers_labels_is_refused(driving, tmp_path):
    """Another customer's file (or one missing a predicted label) gives no ids: refused, not
    completed with invented ones."""
    (tmp_path / "b.json").write_text(json.dumps({"images": [], "annotations": [], "categories": [
        {"id": 7, "name": "Truck"}, {"id": 3, "name": "Car"}]}))
    with pytest.raises(CategoryIdsError, match=r"lack customer_b's labels \['Pedestrian_adult'"):
        customer_labels(driving, "customer_b", tmp_path / "b.json")
    # a null label the file lacks follows after its largest id (it is never predicted)
    (tmp_path / "a.json").write_text(json.dumps({"images": [], "annotations": [], "categories": [
        {"id": 5, "name": "Human"}]}))
    assert customer_labels(driving, "customer_a", tmp_path / "a.json").names == {
        5: "Human", 6: "Dog"}


def test_customer_id_space_never_guesses(tmp_path):
    """No --categories, taxonomies without data (a checkpoint's), training files not here:
    an error naming the flags; the training files' data: gives the ids."""
    # the shipped taxonomies' data: names data/demo, which a checkout may hold: use a copy
    # without data
    driving = supertax.load([copy_taxonomies(DRIVING, tmp_path / "no_data", lambda name: [])])
    with pytest.raises(CategoryIdsError, match="--categories FILE .* or --taxonomies PATH"):
        customer_id_space(driving, "customer_b",
                          training=TrainingTaxonomies((str(tmp_path / "gone"),)))
    folder = make_tiny_taxonomies(tmp_path, images_per_customer=1)
    space = customer_id_space(driving, "customer_b", training=TrainingTaxonomies((str(folder),)))
    assert space.ids_from.endswith("customer_b/annotations.json") and space.own_ids
    assert not customer_labels(driving, "customer_b").own_ids  # names only: 1..L, not written


def test_coarse_label_takes_the_parent_column_and_null_labels_are_not_predicted(driving):
    a = customer_labels(driving, "customer_a")
    assert a.names == {1: "Human", 2: "Dog"} and a.not_predicted == ["Dog"]
    assert a.relabel([_res(1, 0, 0.7), _res(1, 1)]) == [{**_res(1, 0, 0.7), "category_id": 1}]
    c = customer_labels(driving, "customer_c")
    assert c.relabel([_res(1, 3, 0.4), _res(1, 4)]) == [{**_res(1, 3, 0.4), "category_id": 1}]


def test_unknown_customer_is_an_input_error_naming_the_known_ones(driving):
    with pytest.raises(InputError, match="customer_a, customer_b, customer_c"):
        customer_labels(driving, "customer_z")


def test_coco_prelabels_is_a_scored_coco_file(driving):
    space = customer_labels(driving, "customer_a")
    images = [{"id": 1, "file_name": "x/1.png", "width": 10, "height": 8}]
    out = coco_prelabels(images, space.relabel([_res(1, 0, 0.5)]), space, {"checkpoint": "c"})
    assert out["annotations"] == [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 3, 4],
                                   "segmentation": [], "area": 12, "iscrowd": 0, "score": 0.5}]
    assert out["info"]["not_predicted"] == ["Dog"] and out["info"]["checkpoint"] == "c"
    assert [c["name"] for c in out["categories"]] == ["Human", "Dog"]


def test_file_names_match_exactly_or_by_the_unique_path_ending():
    gt = [{"id": 10, "file_name": "images/a.png"}, {"id": 11, "file_name": "b.png"},
          {"id": 12, "file_name": "x/c.png"}, {"id": 13, "file_name": "y/c.png"}]
    preds = [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "data/b.png"},
             {"id": 3, "file_name": "x/c.png"}, {"id": 4, "file_name": "z.png"}]
    assert match_file_names(preds, gt, "p") == ({1: 10, 2: 11, 3: 12}, ["z.png"])
    with pytest.raises(CocoFormatError, match="fits several"):
        match_file_names([{"id": 5, "file_name": "c.png"}], gt, "p")


def test_results_from_coco_maps_images_by_name_and_categories_by_name():
    gt = {"images": [{"id": 5, "file_name": "a.png"}], "annotations": [], "categories": []}
    data = {"images": [{"id": 1, "file_name": "a.png"}, {"id": 2, "file_name": "new.png"}],
            "categories": [{"id": 1, "name": "Car"}, {"id": 2, "name": "Dog"}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [0, 0, 2, 2],
                             "score": 0.5},
                            {"id": 2, "image_id": 1, "category_id": 2, "bbox": [0, 0, 2, 2],
                             "score": 0.5},
                            {"id": 3, "image_id": 2, "category_id": 1, "bbox": [0, 0, 2, 2],
                             "score": 0.5}]}
    results, warnings = results_from_coco(data, gt, {"Car": 3, "Dog": None}.get, "p.json")
    assert results == [{"image_id": 5, "category_id": 3, "bbox": [0, 0, 2, 2], "score": 0.5}]
    assert "1 images are not in the ground truth (e.g. new.png); their 1 detections" in warnings[0]
    del data["annotations"][0]["score"]
    with pytest.raises(CocoFormatError, match="score"):
        results_from_coco(data, gt, {"Car": 3, "Dog": None}.get, "p.json")


def test_own_image_ids_match_by_file_name_and_number_the_rest_after_the_largest(tmp_path):
    (tmp_path / "gt.json").write_text(json.dumps({"annotations": [], "categories": [], "images": [
        {"id": 1000, "file_name": "a.png"}, {"id": 1007, "file_name": "late/b.png"},
        {"id": 1003, "file_name": "x/c.png"}, {"id": 1004, "file_name": "y/c.png"}]}))
    mine = [{"id": 1, "file_name": "late/b.png"}, {"id": 2, "file_name": "a.png"},
            {"id": 3, "file_name": "new.png"}, {"id": 4, "file_name": "c.png"}]
    mapping, note = own_image_ids(mine, tmp_path / "gt.json")
    assert mapping == {1: 1007, 2: 1000, 3: 1008, 4: 1009}  # c.png fits two: not guessed
    assert note.startswith("2 of 4 images have their ids in")
