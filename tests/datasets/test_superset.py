"""The super-dataset COCO file: contract format, pycocotools-valid, loads back to equal samples."""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import shutil

import numpy as np
import pytest
from pycocotools.coco import COCO

from taxdet.datasets import CocoFormatError, MergeConfig, Sample, SuperDataset, merge
from taxdet.supertax import TaxonomySet


def ann(image_id, category_id, bbox, **kw) -> dict:
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox, **kw}


@pytest.fixture
def dataset(make_coco, driving_with_data) -> SuperDataset:
    a = make_coco("a", categories=["Human"],
                  images=[{"id": 3, "width": 64, "height": 48},
                          {"id": 4, "width": 30, "height": 20}],
                  annotations=[ann(3, 1, [1.25, 2, 10, 20]), ann(3, 1, [0, 0, 8, 8], iscrowd=1),
                               ann(3, 1, [30.5, 1, 3.3, 7.1])])
    b = make_coco("b", categories=["Car", "Truck"], images=[{"id": 1, "width": 50, "height": 40}],
                  annotations=[ann(1, 1, [5, 5, 10, 10]), ann(1, 2, [20, 5, 10, 10])])
    return merge(driving_with_data(customer_a=[a], customer_b=[b]), MergeConfig())[0]


def assert_same_samples(got: list[Sample], want: list[Sample]) -> None:
    assert len(got) == len(want)
    for g, w in zip(got, want):
        for f in dataclasses.fields(Sample):
            gv, wv = getattr(g, f.name), getattr(w, f.name)
            if isinstance(wv, np.ndarray):
                assert gv.dtype == wv.dtype and gv.shape == wv.shape, f.name
                np.testing.assert_array_equal(gv, wv, err_msg=f.name)
            else:
                assert gv == wv, f.name


def test_round_trip_gives_the_same_samples(dataset, tmp_path):
    dataset.write(tmp_path / "out" / "super.json")
    back = SuperDataset.load(tmp_path / "out" / "super.json", dataset.taxset)
    assert_same_samples(list(back), list(dataset))


def test_file_names_are_relative_so_data_and_file_move_together(dataset, tmp_path):
    dataset.write(tmp_path / "super.json")
    data = json.loads((tmp_path / "super.json").read_text())
    assert [im["file_name"] for im in data["images"]] == ["a/images/3.png", "a/images/4.png",
                                                          "b/images/1.png"]
    moved = tmp_path.parent / (tmp_path.name + "_moved")
    shutil.copytree(tmp_path, moved)
    back = SuperDataset.load(moved / "super.json", dataset.taxset)
    assert back[0].file == str(moved / "a" / "images" / "3.png")


def test_coco_file_follows_the_contract(dataset):
    data = dataset.to_coco()
    assert data["categories"][:3] == [
        {"id": 1, "name": "person", "supercategory": None},
        {"id": 2, "name": "pedestrian_adult", "supercategory": "person"},
        {"id": 3, "name": "pedestrian_child", "supercategory": "person"}]
    assert [c["id"] for c in data["categories"]] == list(range(1, 8))     # column + 1
    im = data["images"][0]
    assert im["taxonomy"] == "customer_a" and im["source_image_id"] == 3
    assert im["missing_classes"] == ["pedestrian_adult", "pedestrian_child", "vehicle", "car",
                                     "truck", "traffic_light"]
    assert im["content_hash"] == dataset[0].content_hash and len(im["content_hash"]) == 40
    a1, a3, crowd = data["annotations"][:3]     # per image: boxes, then ignore regions
    assert a1 | {"bbox": None} == {"id": 1, "image_id": 1, "category_id": 1, "bbox": None,
                                   "area": 200.0, "iscrowd": 0, "box_weight": 1.0,
                                   "source_ann_id": 1}
    assert a1["bbox"] == [1.25, 2, 10, 20]
    # boxes are stored as float32 x1y1x2y2: x2 = 30.5 + 3.3 = 33.8 (float32), so w ~ 3.3 +- 1e-6
    assert a3["bbox"] == pytest.approx([30.5, 1, 3.3, 7.1], abs=1e-5)
    assert crowd == {"id": 3, "image_id": 1, "category_id": 1, "bbox": [0, 0, 8, 8],
                     "area": 64.0, "iscrowd": 1}          # ignore region keeps the class
    car = data["annotations"][3]
    assert car["category_id"] == 5 and car["box_weight"] == 2.0  # car is column 4


def test_pycocotools_loads_the_super_dataset(dataset, tmp_path):
    dataset.write(tmp_path / "super.json")
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO(str(tmp_path / "super.json"))
    assert len(coco.imgs) == 3 and len(coco.anns) == 5          # 3 + 2 annotations
    assert coco.getAnnIds(imgIds=[1], iscrowd=False) == [1, 2]   # boxes only, not the crowd
    assert coco.getCatIds(catNms=["car"]) == [5]


def test_load_refuses_another_taxonomy_set(dataset, tmp_path, driving):
    dataset.write(tmp_path / "super.json")
    other = TaxonomySet.from_dict(json.loads(json.dumps(driving.to_dict()).replace(
        '"traffic_light"', '"signal"')))
    with pytest.raises(CocoFormatError, match="categories do not match super-taxonomy 'driving' "
                                              r"\(expected id = column \+ 1: 1 person, .*7 signal; "
                                              r"got 1 person, .*7 traffic_light\)"):
        SuperDataset.load(tmp_path / "super.json", other)


def test_load_refuses_masks_that_changed(dataset, tmp_path):
    dataset.write(tmp_path / "super.json")
    data = json.loads((tmp_path / "super.json").read_text())
    data["images"][0]["missing_classes"] = ["vehicle"]
    (tmp_path / "super.json").write_text(json.dumps(data))
    with pytest.raises(CocoFormatError) as err:
        SuperDataset.load(tmp_path / "super.json", dataset.taxset)
    assert str(err.value).startswith(f"{tmp_path / 'super.json'}: image id 1: missing_classes "
                                     "['vehicle'] differ from taxonomy 'customer_a'")


def test_load_names_a_bad_box_weight(dataset, tmp_path):
    dataset.write(tmp_path / "super.json")
    data = json.loads((tmp_path / "super.json").read_text())
    data["annotations"][3]["box_weight"] = "heavy"
    (tmp_path / "super.json").write_text(json.dumps(data))
    with pytest.raises(CocoFormatError, match="annotation id 4: box_weight must be a positive "
                                              "finite number, got 'heavy'"):
        SuperDataset.load(tmp_path / "super.json", dataset.taxset)


def test_subset_len_and_iteration(dataset):
    sub = dataset.subset([3, 1])
    assert len(sub) == 2 and [s.image_id for s in sub] == [3, 1]
    assert sub.taxset is dataset.taxset
    with pytest.raises(KeyError):
        dataset.subset([99])


def test_samples_of_a_taxonomy_share_a_read_only_mask(dataset):
    with pytest.raises(ValueError, match="read-only"):
        dataset[0].label_mask[3] = True
    assert dataset[0].label_mask is dataset[1].label_mask
