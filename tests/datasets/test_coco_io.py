"""Reading COCO files: every malformed input fails with a message naming file and record."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO

from taxdet.datasets.coco_io import CocoFormatError, DuplicateIdError, read_coco

IMG = {"id": 1, "file_name": "1.png", "width": 64, "height": 48}
ANN = {"image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20]}


def write(tmp_path, data) -> str:
    path = tmp_path / "ann.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return str(path)


def coco(**overrides) -> dict:
    out = {"images": [IMG], "annotations": [ANN | {"id": 1}],
           "categories": [{"id": 1, "name": "Human"}]}
    return out | overrides


def test_valid_file_becomes_columns(make_coco):
    files = make_coco(images=[IMG, {"id": 7, "width": 32, "height": 30, "file_name": "x/7.jpg"}],
                      annotations=[ANN, {"image_id": 7, "category_id": 2, "bbox": [0.5, 0, 3, 4],
                                         "iscrowd": 1}],
                      categories=["Human", "Dog"])
    c = read_coco(files.annotations)
    assert c.images.ids.tolist() == [1, 7] and c.images.file_names == ["1.png", "x/7.jpg"]
    assert c.images.width.tolist() == [64, 32] and c.images.height.tolist() == [48, 30]
    assert c.annotations.ids.tolist() == [1, 2] and c.annotations.image_ids.tolist() == [1, 7]
    np.testing.assert_array_equal(c.annotations.bbox, [[1, 2, 10, 20], [0.5, 0, 3, 4]])
    assert c.annotations.iscrowd.tolist() == [False, True]
    assert c.categories == {1: "Human", 2: "Dog"}


def test_missing_file_is_named(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(CocoFormatError, match=f"^{path}: annotation file not found$"):
        read_coco(path)


def test_invalid_json_gives_line_and_column(tmp_path):
    path = write(tmp_path, '{\n  "images": [,]\n}')
    # the stray comma is on line 2, column 14
    with pytest.raises(CocoFormatError) as err:
        read_coco(path)
    assert str(err.value) == f"{path}: not valid JSON: Expecting value at line 2 column 14"


@pytest.mark.parametrize("data, message", [
    ([1, 2], "not a COCO file: the top level must be a JSON object with 'images', "
             "'annotations' and 'categories' lists, got list"),
    ({"images": [], "categories": []}, "not a COCO file: missing top-level list 'annotations'"),
    ({"images": {}, "annotations": [], "categories": []},
     "not a COCO file: 'images' must be a list, got dict"),
    (coco(images=["x"]), "images[0] must be a JSON object, got str 'x'"),
    (coco(images=[{"width": 64, "height": 48, "file_name": "a.png"}]),
     "images[0]: missing key 'id'"),
    (coco(images=[IMG | {"width": "64"}]),
     "image id 1: width must be a positive integer, got '64'"),
    (coco(images=[IMG | {"height": 0}]),
     "image id 1: height must be a positive integer, got 0"),
    (coco(images=[IMG | {"file_name": ""}]),
     "image id 1: file_name must be a non-empty string, got ''"),
    (coco(annotations=[ANN | {"id": 1.5}]), "annotations[0]: id must be an integer, got 1.5"),
    (coco(annotations=[ANN | {"id": 3, "iscrowd": 2}]),
     "annotation id 3 (image id 1): iscrowd must be 0 or 1, got 2"),
    (coco(annotations=[ANN | {"id": 3, "category_id": 9}]),
     "annotation id 3 (image id 1): category_id 9 is not in the file's categories (ids: 1)"),
    (coco(categories=[{"id": 1}]), "category id 1: missing key 'name'"),
])
def test_bad_shape_or_record_is_named(tmp_path, data, message):
    path = write(tmp_path, data)
    with pytest.raises(CocoFormatError) as err:
        read_coco(path)
    assert str(err.value) == f"{path}: {message}"


@pytest.mark.parametrize("bbox, shown", [
    ([1, 2, float("nan"), 4], "[1, 2, nan, 4]"),          # json writes the NaN literal
    ([1, 2, float("inf"), 4], "[1, 2, inf, 4]"),          # ... and Infinity
    ([1, 2, "3", 4], "[1, 2, '3', 4]"),
    ([], "[]"),
    ([1, 2, 3], "[1, 2, 3]"),
    ([1, 2, 3, 4, 5], "[1, 2, 3, 4, 5]"),
    (None, "None"),
    ([1, 2, None, 4], "[1, 2, None, 4]"),
])
def test_bbox_must_be_four_finite_numbers(make_coco, bbox, shown):
    ok = {"image_id": 1, "category_id": 1, "bbox": [0, 0, 5, 5]}
    bad = {"image_id": 1, "category_id": 1, "bbox": bbox}
    files = make_coco(annotations=[ok, bad], write_images=False)   # the bad one is id 2
    with pytest.raises(CocoFormatError) as err:
        read_coco(files.annotations)
    assert str(err.value) == (f"{files.annotations}: annotation id 2 (image id 1): bbox must be 4 "
                              f"finite numbers [x, y, width, height], got {shown}")


@pytest.mark.parametrize("section, records, message", [
    ("images", [IMG | {"file_name": "a.png"}, IMG | {"file_name": "b.png"}],
     "duplicate image id(s): 1 (images[0], images[1])"),
    ("annotations", [ANN | {"id": 4}, ANN | {"id": 5}, ANN | {"id": 4}],
     "duplicate annotation id(s): 4 (annotations[0], annotations[2])"),
    ("categories", [{"id": 1, "name": "Human"}, {"id": 1, "name": "Dog"}],
     "duplicate category id(s): 1 (categories[0], categories[1])"),
])
def test_duplicate_ids_are_errors(tmp_path, section, records, message):
    path = write(tmp_path, coco(**{section: records}))
    with pytest.raises(DuplicateIdError) as err:
        read_coco(path)
    assert str(err.value) == (f"{path}: {message} -- ids must be unique "
                              "(pycocotools would silently keep only the last)")


def test_pycocotools_silently_overwrites_duplicate_ids(tmp_path):
    """Why we check: the reference keeps 1 of the 2 annotations with id 4 and says nothing."""
    twice = [ANN | {"id": 4}, ANN | {"id": 4, "bbox": [0, 0, 1, 1]}]
    path = write(tmp_path, coco(annotations=twice))
    with contextlib.redirect_stdout(io.StringIO()):
        assert len(COCO(path).anns) == 1
