"""Merging customer COCO files into the super-dataset, and the report's accounting."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest

from taxdet.datasets import (
    CocoFormatError,
    DatasetError,
    DuplicateImageError,
    MergeConfig,
    MissingImagesError,
    UnmappedCategoryError,
    merge,
)
from taxdet.datasets.merge import image_paths
from taxdet.datasets.merge_report import (
    CHANGED_CLIPPED,
    CHANGED_CROWD,
    CHANGED_DUPLICATE,
    DROP_MISSING_IMAGE,
    DROP_NONPOSITIVE,
    DROP_NULL,
    DROP_OUTSIDE,
    DROP_UNMAPPED,
)

NAMES = ["person", "pedestrian_adult", "pedestrian_child", "vehicle", "car", "truck",
         "traffic_light"]


def ann(image_id, category_id, bbox, **kw) -> dict:
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, **kw}


@pytest.fixture
def customers(make_coco):
    """customer_a has one annotation of every outcome; b and c are small and clean."""
    a = make_coco("a", categories=["Human", "Dog"],
                  images=[{"id": 1, "width": 64, "height": 48},
                          {"id": 2, "width": 32, "height": 32}],
                  annotations=[ann(1, 1, [1, 2, 10, 20]),                 # 1 kept
                               ann(1, 2, [5, 5, 4, 4]),                   # 2 Dog: maps_to null
                               ann(2, 1, [-5, 2, 10, 20]),                # 3 clipped
                               ann(2, 1, [0, 0, 10, 10], iscrowd=1),      # 4 crowd -> ignore
                               ann(7, 1, [0, 0, 5, 5]),                   # 5 no image 7
                               ann(1, 1, [0, 0, 0, 5]),                   # 6 zero width
                               ann(2, 1, [40, 40, 5, 5])])                # 7 outside 32x32
    b = make_coco("b", categories=["Pedestrian_adult", "Pedestrian_child", "Car", "Truck"],
                  images=[{"id": 1, "width": 40, "height": 30}],
                  annotations=[ann(1, 3, [0, 0, 10, 10]), ann(1, 2, [1, 1, 2, 2])])
    c = make_coco("c", categories=["Vehicle", "Traffic_light"],
                  images=[{"id": 5, "width": 20, "height": 20},
                          {"id": 6, "width": 20, "height": 20}],
                  annotations=[ann(5, 1, [2, 3, 4, 5])])
    return {"customer_a": [a], "customer_b": [b], "customer_c": [c]}


@pytest.fixture
def merged(customers, driving_with_data):
    return merge(driving_with_data(**customers), MergeConfig())


def test_label_masks_follow_taxonomy_semantics(merged):
    ds, _ = merged
    labeled = {s.taxonomy: [n for n, m in zip(NAMES, s.label_mask) if m] for s in ds}
    assert labeled == {
        "customer_a": ["person"],    # Human -> person; Dog is outside the super-taxonomy
        # person is exhaustive over the two pedestrians, which B labels: person is labeled too
        "customer_b": ["person", "pedestrian_adult", "pedestrian_child", "car", "truck"],
        "customer_c": ["vehicle", "traffic_light"]}


def test_image_ids_are_1_to_n_in_taxonomy_then_file_order(merged, customers, driving_with_data):
    ds, _ = merged
    assert [(s.image_id, s.taxonomy, s.source_image_id) for s in ds] == [
        (1, "customer_a", 1), (2, "customer_a", 2), (3, "customer_b", 1),
        (4, "customer_c", 5), (5, "customer_c", 6)]
    again, _ = merge(driving_with_data(**customers), MergeConfig())
    assert [(s.image_id, s.file, s.content_hash) for s in again] == \
        [(s.image_id, s.file, s.content_hash) for s in ds]


def test_boxes_are_x1y1x2y2_with_super_columns_and_label_weights(merged, customers):
    ds, _ = merged
    a1, b1, c5 = ds.by_id(1), ds.by_id(3), ds.by_id(4)
    np.testing.assert_array_equal(a1.boxes, [[1, 2, 11, 22]])     # [1, 2, 1 + 10, 2 + 20]
    assert a1.classes.tolist() == [0] and a1.source_ann_ids.tolist() == [1]
    assert a1.boxes.dtype == np.float32 and a1.classes.dtype == np.int64
    assert b1.classes.tolist() == [4, 2]                          # car, pedestrian_child
    assert b1.box_weights.tolist() == [2.0, 1.0]                  # Car has box_weight 2.0
    np.testing.assert_array_equal(c5.boxes, [[2, 3, 6, 8]])
    assert c5.classes.tolist() == [3]                             # Vehicle -> vehicle
    assert ds.by_id(5).boxes.shape == (0, 4)                      # image without boxes is kept
    assert a1.file == str(customers["customer_a"][0].images / "1.png")
    assert (a1.width, a1.height) == (64, 48)


def test_crowd_boxes_become_ignore_regions_not_positives(merged):
    a2 = merged[0].by_id(2)
    np.testing.assert_array_equal(a2.ignore, [[0, 0, 10, 10]])
    assert a2.ignore_classes.tolist() == [0]                      # the crowd of Human = person
    assert a2.source_ann_ids.tolist() == [3]                      # only ann 3 is a positive
    assert merged[1].taxonomies()["customer_a"][1].changed[CHANGED_CROWD] == 1


def test_partly_outside_box_is_clipped_and_counted(merged):
    a2 = merged[0].by_id(2)
    np.testing.assert_array_equal(a2.boxes, [[0, 2, 5, 22]])      # x1 -5 -> 0, x2 = -5 + 10
    counts = merged[1].taxonomies()["customer_a"][1]
    assert counts.changed[CHANGED_CLIPPED] == 1
    assert counts.examples[CHANGED_CLIPPED][0][1:] == [2, 3]      # image 2, annotation 3


def test_every_annotation_is_kept_or_dropped_for_one_reason(merged, customers):
    report = merged[1]
    counts = report.taxonomies()["customer_a"][1]
    file = str(customers["customer_a"][0].annotations)
    assert counts.dropped == {DROP_MISSING_IMAGE: 1, DROP_NULL: 1, DROP_NONPOSITIVE: 1,
                              DROP_OUTSIDE: 1}
    assert (counts.read, counts.kept) == (7, 3)                   # 7 = 3 kept + 4 dropped
    assert counts.read == counts.kept + sum(counts.dropped.values())
    assert counts.examples[DROP_NULL] == [[file, 1, 2]]           # file, image id, annotation id
    assert counts.examples[DROP_MISSING_IMAGE] == [[file, 7, 5]]
    assert counts.examples[DROP_NONPOSITIVE] == [[file, 1, 6]]
    assert counts.examples[DROP_OUTSIDE] == [[file, 2, 7]]
    images, anns = report.total()
    assert (images.read, images.kept) == (5, 5)
    assert (anns.read, anns.kept) == (7 + 2 + 1, 3 + 2 + 1)
    report.check()


def test_report_check_fails_when_counts_do_not_add_up(merged):
    report = merged[1]
    report.files[0].annotations.kept -= 1
    with pytest.raises(AssertionError,
                       match="counts do not add up: read 7 != kept 2 \\+ dropped 4"):
        report.check()


def test_report_prints_a_table_and_serialises(merged):
    report = merged[1]
    table = report.table().splitlines()
    assert table[1].split() == ["taxonomy", "files", "images", "kept", "annotations", "boxes",
                                "ignore", "dropped", "clipped"]
    assert table[2].split() == ["customer_a", "1", "2", "2", "7", "2", "1", "4", "1"]
    assert table[5].split() == ["total", "3", "5", "5", "10", "5", "1", "4", "1"]
    assert any("1 annotations dropped: label maps_to null" in line for line in table)
    back = json.loads(json.dumps(report.to_dict()))
    assert back["taxonomies"]["customer_a"]["annotations"]["dropped"][DROP_NULL] == 1
    assert back["total"]["annotations"]["read"] == 10


def test_category_not_in_taxonomy_is_an_error(make_coco, driving_with_data):
    a = make_coco("a", categories=["Human", "Bicycle"], annotations=[ann(1, 2, [0, 0, 5, 5])])
    with pytest.raises(UnmappedCategoryError) as err:
        merge(driving_with_data(customer_a=[a]))
    assert str(err.value) == (
        f"{a.annotations}: category id 2 'Bicycle' is not a label of taxonomy 'customer_a' "
        "(its labels: Human, Dog). Add it to the taxonomy (maps_to: null to drop it) or pass "
        "--allow-unmapped (MergeConfig.allow_unmapped) to drop and count its annotations")


def test_allow_unmapped_drops_and_counts(make_coco, driving_with_data):
    a = make_coco("a", categories=["Human", "Bicycle"],
                  annotations=[ann(1, 2, [0, 0, 5, 5]), ann(1, 1, [0, 0, 5, 5])])
    ds, report = merge(driving_with_data(customer_a=[a]), MergeConfig(allow_unmapped=True))
    counts = report.taxonomies()["customer_a"][1]
    assert counts.dropped == {DROP_UNMAPPED: 1} and counts.kept == 1
    assert ds[0].source_ann_ids.tolist() == [2]


def test_missing_images_of_all_taxonomies_are_listed_in_one_error(customers, driving_with_data):
    a, c = customers["customer_a"][0], customers["customer_c"][0]
    (a.images / "2.png").unlink()
    (c.images / "6.png").unlink()
    with pytest.raises(MissingImagesError) as err:
        merge(driving_with_data(**customers))
    assert str(err.value).splitlines() == [
        "2 of 5 image file(s) missing on disk:",
        f"  {a.images / '2.png'} [{a.annotations}, image id 2]",
        f"  {c.images / '6.png'} [{c.annotations}, image id 6]"]


def test_no_check_images_reads_no_image_files(customers, driving_with_data):
    for files in customers.values():
        shutil.rmtree(files[0].images)
    ds, report = merge(driving_with_data(**customers), MergeConfig(check_images=False))
    assert len(ds) == 5 and {s.content_hash for s in ds} == {""} and report.duplicates == []


def test_bad_annotation_file_error_names_the_file(customers, driving_with_data, tmp_path):
    bad = customers["customer_c"][0].annotations
    bad.write_text(bad.read_text().replace("[2, 3, 4, 5]", "[2, 3, NaN, 5]"))
    with pytest.raises(CocoFormatError,
                       match=f"^{bad}: annotation id 1 \\(image id 5\\): bbox must"):
        merge(driving_with_data(**customers))


def test_merging_nothing_is_an_error(driving_with_data):
    with pytest.raises(DatasetError, match="no taxonomy has a data entry: nothing to merge"):
        merge(driving_with_data())


@pytest.fixture
def duplicated(customers):
    """customer_c's image 6 gets the very bytes of customer_a's image 1 (64x48)."""
    a, c = customers["customer_a"][0], customers["customer_c"][0]
    shutil.copy(a.images / "1.png", c.images / "6.png")
    data = json.loads(c.annotations.read_text())
    data["images"][1].update(width=64, height=48)
    c.annotations.write_text(json.dumps(data))
    return customers


def test_same_image_in_two_taxonomies_is_reported_and_kept_as_two_samples(duplicated,
                                                                          driving_with_data):
    ds, report = merge(driving_with_data(**duplicated))
    a1, c6 = ds.by_id(1), ds.by_id(5)
    assert a1.content_hash == c6.content_hash and len(ds) == 5
    # each copy keeps its own taxonomy's mask and boxes: no box is duplicated, no mask widened
    assert a1.label_mask.tolist() == [True] + [False] * 6 and c6.boxes.shape == (0, 4)
    [group] = report.duplicates
    assert group.members == [["customer_a", str(duplicated["customer_a"][0].annotations), 1, 1],
                             ["customer_c", str(duplicated["customer_c"][0].annotations), 6, 5]]
    assert report.taxonomies()["customer_c"][0].changed == {CHANGED_DUPLICATE: 1}
    assert "Duplicate images (same content hash): 1 group(s)" in report.table()


def test_duplicates_error_policy_refuses_them(duplicated, driving_with_data):
    with pytest.raises(DuplicateImageError) as err:
        merge(driving_with_data(**duplicated), MergeConfig(duplicates="error"))
    digest = merge(driving_with_data(**duplicated))[0].by_id(1).content_hash
    assert str(err.value) == ("1 image(s) appear more than once (same content hash):\n  "
                              f"{digest[:12]}: customer_a annotations.json image 1 (super id 1); "
                              "customer_c annotations.json image 6 (super id 5)")


@pytest.mark.parametrize("name", ["a.png", "sub/b.png", "./c.png", "sub/../d.png", "x//e.png",
                                  "/abs/f.png", ".hidden.png", "sub/.g.png"])
def test_image_paths_equal_normpath_join(name):
    want = os.path.normpath(os.path.join("/data/imgs/", name))
    assert image_paths("/data/imgs/", [name]) == [want]
