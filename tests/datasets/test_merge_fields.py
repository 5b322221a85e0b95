"""What the merge keeps beyond boxes: the customers' image fields, the source file, per-class
box counts per customer, and "did you mean" for category names the taxonomy lacks."""

from __future__ import annotations

import json

import pytest

from taxdet.datasets import MergeConfig, SuperDataset, UnmappedCategoryError, merge
from taxdet.datasets.merge_report import CHANGED_OWN_FIELD


def ann(image_id, category_id, bbox, **kw) -> dict:
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, **kw}


@pytest.fixture
def customers(make_coco):
    """a: two images with date_captured (one also carries a field named like the merge's own);
    b: one image, no extra fields."""
    a = make_coco("a", categories=["Human", "Dog"],
                  images=[{"id": 4, "width": 32, "height": 32,
                           "date_captured": "2024-03-05 10:00:00", "camera": {"id": 7}},
                          {"id": 9, "width": 32, "height": 32, "date_captured": "2024-04-01",
                           "taxonomy": "theirs", "source_file": "x.json"}],
                  annotations=[ann(4, 1, [1, 1, 5, 5]), ann(9, 1, [2, 2, 5, 5]),
                               ann(9, 2, [2, 2, 5, 5])])
    b = make_coco("b", categories=["Pedestrian_adult", "Pedestrian_child", "Car", "Truck"],
                  images=[{"id": 1, "width": 40, "height": 30}],
                  annotations=[ann(1, 3, [0, 0, 10, 10]), ann(1, 3, [5, 5, 10, 10]),
                               ann(1, 1, [1, 1, 2, 2])])
    return {"customer_a": [a], "customer_b": [b]}


@pytest.fixture
def merged(customers, driving_with_data):
    return merge(driving_with_data(**customers), MergeConfig(check_images=False))


def test_customer_image_fields_are_kept_and_the_merges_own_are_not_clobbered(merged, customers):
    ds, report = merged
    a4, a9, b1 = ds.by_id(1), ds.by_id(2), ds.by_id(3)
    assert a4.extra == {"date_captured": "2024-03-05 10:00:00", "camera": {"id": 7}}
    assert a9.extra == {"date_captured": "2024-04-01"}       # taxonomy / source_file not copied
    assert (a9.taxonomy, b1.extra) == ("customer_a", {})
    assert a9.source_file == str(customers["customer_a"][0].annotations)
    images = report.taxonomies()["customer_a"][0]
    assert images.changed == {CHANGED_OWN_FIELD: 1}
    assert images.examples[CHANGED_OWN_FIELD] == [[a9.source_file, 9, None]]


def test_super_json_carries_the_fields_and_loads_them_back(merged, driving_with_data, customers,
                                                           tmp_path):
    ds, _ = merged
    ds.write(tmp_path / "super.json")
    images = json.loads((tmp_path / "super.json").read_text())["images"]
    assert images[0]["date_captured"] == "2024-03-05 10:00:00"
    assert images[1]["taxonomy"] == "customer_a" and images[1]["source_image_id"] == 9
    assert images[1]["source_file"] == str(customers["customer_a"][0].annotations)
    back = SuperDataset.load(tmp_path / "super.json", driving_with_data(**customers))
    assert [(s.extra, s.source_file) for s in back] == [(s.extra, s.source_file) for s in ds]


def test_boxes_per_class_are_counted_per_customer(merged):
    _, report = merged
    # a: Human x2 -> person (Dog maps to null); b: Car x2, Pedestrian_adult x1
    assert report.class_boxes() == {
        "customer_a": {"person": 2},
        "customer_b": {"person": 0, "pedestrian_adult": 1, "pedestrian_child": 0, "car": 2,
                       "truck": 0}}
    assert report.files[0].labels == {"Human": {"read": 2, "boxes": 2},
                                      "Dog": {"read": 1, "boxes": 0}}
    data = json.loads(json.dumps(report.to_dict()))
    assert data["total"]["boxes_per_class"]["person"] == 2
    assert data["taxonomies"]["customer_b"]["boxes_per_class"]["car"] == 2
    assert data["files"][1]["labels"]["Car"] == {"read": 2, "boxes": 2}


def test_report_table_shows_a_class_by_customer_box_matrix(merged):
    table = merged[1].table().splitlines()
    start = next(i for i, line in enumerate(table) if line.startswith("Boxes per class"))
    rows = [line.split() for line in table[start + 1:]]
    assert rows[0] == ["class", "customer_a", "customer_b", "total"]
    assert rows[1] == ["person", "2", "0", "2"]
    assert rows[3] == ["pedestrian_child", ".", "0", "0", "no", "boxes"]
    assert rows[4] == ["vehicle", ".", ".", "."]                  # nobody labels it


def test_unknown_category_name_gets_a_case_insensitive_suggestion(make_coco, driving_with_data):
    a = make_coco("a", categories=["human", "Dog"], annotations=[ann(1, 1, [0, 0, 5, 5])])
    with pytest.raises(UnmappedCategoryError) as err:
        merge(driving_with_data(customer_a=[a]), MergeConfig(check_images=False))
    assert "category id 1 'human' (did you mean 'Human'?) is not a label of taxonomy " \
        "'customer_a' (its labels: Human, Dog)" in str(err.value)
