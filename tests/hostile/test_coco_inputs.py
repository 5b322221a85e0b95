"""Hostile COCO inputs: booleans for numbers, ids beyond int64, duplicate category names,
malformed predictions, deep nesting, huge or endless files, images declaring billions of
pixels. Each is a clear error naming the file and the record (the CLIs exit 1 and change
nothing on disk)."""

from __future__ import annotations

import json
import os
import shutil
import struct
import threading
import zlib
from pathlib import Path

import cv2
import pytest
import yaml

import taxdet.supertax as supertax
from taxdet.core.errors import ConfigError
from taxdet.core.json_files import MAX_JSON_BYTES_ENV
from taxdet.datasets import torch_dataset
from taxdet.datasets.coco_io import CocoFormatError, read_coco
from taxdet.datasets.images import ImageReadError
from taxdet.datasets.torch_dataset import load_image
from taxdet.detection.evaluation import EvalInputError, evaluate
from tests.coco_files import write_coco
from tests.factories import make_checkpoint, make_demo, make_tiny_taxonomies
from tests.paths import DRIVING

TOO_BIG = 2 ** 63  # one past int64
GT = {"images": [{"id": 1, "width": 64, "height": 48}],
      "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20],
                       "area": 200, "iscrowd": 0}],
      "categories": [{"id": 1, "name": "car"}]}
PRED = {"image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20], "score": 0.9}


def changed(data: dict, section: str, index: int, **values) -> dict:
    out = json.loads(json.dumps(data))
    out[section][index].update(values)
    return out


def coco_file(tmp_path: Path, data) -> Path:
    path = tmp_path / "ann.json"
    path.write_text(data if isinstance(data, str) else json.dumps(data))
    return path


def read_error(tmp_path: Path, data) -> str:
    path = coco_file(tmp_path, data)
    with pytest.raises(CocoFormatError) as err:
        read_coco(path)
    assert str(err.value).startswith(f"{path}: ")
    return str(err.value)


def merge_file(tmp_path: Path) -> dict:
    """A valid 2-image COCO dict as the merger reads it (with file names)."""
    return {"images": [{"id": 1, "file_name": "1.png", "width": 64, "height": 48},
                       {"id": 2, "file_name": "2.png", "width": 64, "height": 48}],
            "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20]},
                            {"id": 2, "image_id": 2, "category_id": 1, "bbox": [3, 4, 5, 6]}],
            "categories": [{"id": 1, "name": "Human"}]}


# ---------------------------------------------------------------- booleans are not numbers
@pytest.mark.parametrize("section, index, key, value, message", [
    ("annotations", 0, "bbox", [True, 2, 3, 4],
     "annotation id 1 (image id 1): bbox must be 4 finite numbers [x, y, width, height], "
     "got [True, 2, 3, 4]"),
    ("annotations", 1, "bbox", [1.5, 2, False, 4], "annotation id 2 (image id 2): bbox must be"),
    ("images", 0, "width", True, "image id 1: width must be a positive integer, got True"),
    ("images", 1, "height", True, "image id 2: height must be a positive integer, got True"),
    ("images", 1, "id", True, "images[1]: id must be an integer, got True"),
    ("annotations", 1, "image_id", False, "annotation id 2: image_id must be an integer"),
    ("annotations", 0, "category_id", True, "annotation id 1 (image id 1): category_id must be"),
    ("categories", 0, "id", True, "categories[0]: id must be an integer, got True"),
])
def test_booleans_are_refused_where_numbers_are_expected(tmp_path, section, index, key, value,
                                                         message):
    """Mixed with numbers, numpy reads ``true`` as 1 (the fast path): it must not pass."""
    assert message in read_error(tmp_path, changed(merge_file(tmp_path), section, index,
                                                   **{key: value}))


def test_a_boolean_is_named_on_the_slow_path_too(tmp_path):
    """Another record fails the column first; the scan then names the first bad record."""
    data = changed(merge_file(tmp_path), "annotations", 0, bbox=[1, True, 3, 4])
    data["annotations"][1]["bbox"] = "not a box"
    assert "annotation id 1 (image id 1): bbox must be 4 finite numbers" in read_error(tmp_path,
                                                                                       data)


@pytest.mark.parametrize("preds, message", [
    ([PRED, {**PRED, "bbox": [True, 2, 3, 4]}], "prediction [1]: bbox must be 4 numbers"),
    ([PRED, {**PRED, "score": True}], "prediction [1]: score must be a number, got True"),
    ([PRED, {**PRED, "image_id": True}], "prediction [1]: image_id must be an integer"),
    ([{**PRED, "category_id": False}, PRED], "prediction [0]: category_id must be an integer"),
])
def test_evaluate_refuses_booleans_in_predictions(preds, message):
    with pytest.raises(EvalInputError, match=message.replace("[", r"\[").replace("]", r"\]")):
        evaluate(GT, preds)


@pytest.mark.parametrize("section, key, value, message", [
    ("annotations", "area", True, "annotation id 1: area must be a finite number, got True"),
    ("annotations", "bbox", [1, 2, True, 4], "annotation id 1: bbox must be 4 finite numbers"),
    ("images", "width", True, "image id 1 needs positive 'width' and 'height'"),
    ("annotations", "image_id", True, "annotation id 1: image_id must be an integer, got True"),
])
def test_evaluate_refuses_booleans_in_the_ground_truth(section, key, value, message):
    with pytest.raises(EvalInputError, match=message):
        evaluate(changed(GT, section, 0, **{key: value}), [PRED])


@pytest.mark.parametrize("extra, message", [
    ({"missing_classes": 5}, "image id 1: missing_classes must be a list of class names, got 5"),
    ({"missing_classes": [None]}, "image id 1: missing_classes must be a list of class names"),
    ({"taxonomy": ["customer_a"]}, r"image id 1: unknown taxonomy \['customer_a'\]"),
])
def test_evaluate_refuses_mistyped_image_labels(driving, extra, message):
    with pytest.raises(EvalInputError, match=message):
        evaluate(changed(GT, "images", 0, **extra), [PRED], taxset=driving)


# ---------------------------------------------------------------- ids beyond int64
@pytest.mark.parametrize("section, index, key, name", [
    ("images", 1, "id", "images[1]"),
    ("annotations", 0, "id", "annotations[0]"),
    ("annotations", 1, "image_id", "annotation id 2"),
    ("categories", 0, "id", "categories[0]"),
])
@pytest.mark.parametrize("value", [TOO_BIG, -TOO_BIG - 1, 10 ** 30])
def test_ids_beyond_int64_are_out_of_range(tmp_path, section, index, key, name, value):
    message = read_error(tmp_path, changed(merge_file(tmp_path), section, index, **{key: value}))
    assert f"{name}" in message and f"{key} is out of range (int64): {value}" in message
    assert "must be an integer" not in message


def test_prediction_ids_beyond_int64_are_out_of_range():
    with pytest.raises(EvalInputError,
                       match=rf"prediction \[1\]: image_id is out of range \(int64\): {TOO_BIG}"):
        evaluate(GT, [PRED, {**PRED, "image_id": TOO_BIG}])


# ---------------------------------------------------------------- malformed predictions
@pytest.mark.parametrize("bad, message", [
    ({**PRED, "category_id": -TOO_BIG - 1}, "category_id is out of range"),
    ({**PRED, "score": 10 ** 400}, "score is out of range"),
    ({**PRED, "bbox": [1, 2, 10 ** 400, 4]}, "bbox must be 4 numbers"),
    ({**PRED, "bbox": [[1], 2, 3, 4]}, "bbox must be 4 numbers"),
    ({**PRED, "score": [0.5]}, "score must be a number"),
    ({**PRED, "score": None}, "score must be a number"),
    ({**PRED, "image_id": 1.0}, "image_id must be an integer"),
    ("not a record", "expected an object"),
    ({"image_id": 1, "category_id": 1, "score": 1}, "missing 'bbox'"),
])
def test_every_malformed_prediction_names_its_index_and_key(bad, message):
    with pytest.raises(EvalInputError) as err:
        evaluate(GT, [PRED, PRED, bad])
    assert "prediction [2]: " in str(err.value) and message in str(err.value)


# ---------------------------------------------------------------- duplicate category names
def test_two_categories_of_one_name_are_an_error_naming_both_ids(tmp_path):
    data = merge_file(tmp_path)
    data["categories"] = [{"id": 1, "name": "Human"}, {"id": 5, "name": "Dog"},
                          {"id": 7, "name": "Human"}]
    assert read_error(tmp_path, data).endswith(
        "category names must be unique: 'Human' is the name of category ids 1, 7")


# ---------------------------------------------------------------- deep nesting, size, devices
DEEP = "[" * 100_000 + "]" * 100_000


def test_deeply_nested_json_is_an_error_not_a_recursion_error(tmp_path):
    assert "JSON nested too deeply" in read_error(tmp_path, DEEP)
    with pytest.raises(EvalInputError, match="ann.json: JSON nested too deeply"):
        evaluate(GT, tmp_path / "ann.json")


def test_files_over_the_size_limit_are_refused_before_reading(tmp_path, monkeypatch):
    path = coco_file(tmp_path, merge_file(tmp_path))
    monkeypatch.setenv(MAX_JSON_BYTES_ENV, str(path.stat().st_size - 1))
    with pytest.raises(CocoFormatError, match=f"^{path}: annotation file is larger than the "
                       f"limit of {path.stat().st_size - 1} bytes \\(set {MAX_JSON_BYTES_ENV}"):
        read_coco(path)
    monkeypatch.setenv(MAX_JSON_BYTES_ENV, str(path.stat().st_size))
    assert read_coco(path).images.ids.tolist() == [1, 2]


@pytest.mark.parametrize("value", ["lots", "-5", "0"])
def test_a_bad_size_limit_setting_is_an_error_naming_the_variable(tmp_path, monkeypatch, value):
    monkeypatch.setenv(MAX_JSON_BYTES_ENV, value)
    with pytest.raises(ConfigError, match=f"{MAX_JSON_BYTES_ENV}={value!r}"):
        read_coco(coco_file(tmp_path, GT))


def test_a_device_is_refused_without_reading_it():
    with pytest.raises(CocoFormatError, match="^/dev/zero: annotation file is not a regular file"):
        read_coco("/dev/zero")
    with pytest.raises(EvalInputError, match="^/dev/zero: ground truth file is not a regular"):
        evaluate("/dev/zero", [])


def test_a_pipe_is_read_up_to_the_limit_only(tmp_path, monkeypatch):
    fifo = tmp_path / "pipe.json"
    os.mkfifo(fifo)
    monkeypatch.setenv(MAX_JSON_BYTES_ENV, "1000")

    def endless_writer():
        try:
            with open(fifo, "wb") as f:
                for _ in range(1000):
                    f.write(b" " * 1000)
        except BrokenPipeError:  # the reader stopped at the limit
            pass

    writer = threading.Thread(target=endless_writer)
    writer.start()
    try:
        with pytest.raises(CocoFormatError, match="pipe.json: annotation file is larger than "
                           "the limit of 1000 bytes"):
            read_coco(fifo)
    finally:
        writer.join(10)
    assert not writer.is_alive()


# ---------------------------------------------------------------- images declaring huge sizes
def png_declaring(path: Path, width: int, height: int) -> Path:
    """A PNG of a few dozen bytes whose header declares ``width`` x ``height`` RGB pixels."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data)))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header)
                     + chunk(b"IDAT", zlib.compress(b"\0" * 16)) + chunk(b"IEND", b""))
    return path


def test_an_image_declaring_billions_of_pixels_is_refused_before_decoding(tmp_path):
    path = png_declaring(tmp_path / "huge.png", 40000, 40000)
    with pytest.raises(ImageReadError, match=f"image id 7: {path}: image too large to decode"):
        load_image(str(path), 7)


def test_the_pixel_limit_applies_to_real_images(tmp_path, monkeypatch):
    files = write_coco(tmp_path, images=[{"id": 3, "width": 20, "height": 10}])
    path = str(files.images / "3.png")
    assert load_image(path, 3).shape == (10, 20, 3)
    monkeypatch.setattr("taxdet.datasets.images.MAX_IMAGE_PIXELS", 199)
    with pytest.raises(ImageReadError, match=r"image id 3: .*3.png: image too large to decode "
                       r"\(20x10 = 200 pixels, the limit is 199\)"):
        load_image(path, 3)


def test_an_opencv_error_becomes_an_image_read_error(tmp_path, monkeypatch):
    files = write_coco(tmp_path)

    def failing_imread(path, flags):
        raise cv2.error("OpenCV(4.x) loadsave.cpp:77: error: (-215:Assertion failed) pixels "
                        "<= CV_IO_MAX_IMAGE_PIXELS in function 'validateInputImageSize'\n")

    monkeypatch.setattr(torch_dataset.cv2, "imread", failing_imread)
    with pytest.raises(ImageReadError, match=r"image id 1: cannot read image file .*1.png: "
                       r"OpenCV.*CV_IO_MAX_IMAGE_PIXELS"):
        load_image(str(files.images / "1.png"), 1)


# ---------------------------------------------------------------- the CLIs: exit 1, disk unchanged
@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("coco_world")
    return root, make_tiny_taxonomies(root, images_per_customer=2)


def taxonomies_reading(world, tmp_path: Path, data) -> tuple[Path, Path]:
    """A copy of the world's taxonomies whose customer_a reads ``data`` (written to
    ``tmp_path/in/ann.json``) with customer_a's demo images: (taxonomies folder, that file)."""
    root, tax = world
    folder = tmp_path / "taxonomies"
    shutil.copytree(tax, folder)
    (tmp_path / "in").mkdir()
    ann = coco_file(tmp_path / "in", data)
    doc = yaml.safe_load((folder / "customer_a.yaml").read_text())
    doc["data"] = [{"annotations": str(ann), "images": str(root / "demo/customer_a/images")}]
    (folder / "customer_a.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder, ann


def demo_coco(world) -> dict:
    return json.loads((world[0] / "demo/customer_a/annotations.json").read_text())


@pytest.mark.parametrize("case", ["bool bbox", "duplicate name", "id out of range", "deep"])
def test_merge_refuses_hostile_coco_files(world, run_tool, snapshot, tmp_path, case):
    data = demo_coco(world)
    if case == "bool bbox":
        data["annotations"][-1]["bbox"][0] = True
        message = f"annotation id {data['annotations'][-1]['id']} "
    elif case == "duplicate name":
        name = data["categories"][0]["name"]
        data["categories"].append({"id": 99, "name": name})
        message = f"category names must be unique: {name!r} is the name of category ids "
    elif case == "id out of range":
        data["images"][0]["id"] = TOO_BIG
        message = f"images[0]: id is out of range (int64): {TOO_BIG}"
    else:
        data = DEEP
        message = "JSON nested too deeply"
    folder, ann = taxonomies_reading(world, tmp_path, data)
    snap = snapshot(tmp_path, world[0])
    code, _, err = run_tool("merge_datasets", "--taxonomies", folder,
                            "--out", tmp_path / "out/super.json")
    assert code == 1 and err.startswith(f"error: {ann}: ") and message in err, err
    assert "Traceback" not in err
    snap.unchanged()


@pytest.mark.parametrize("case", ["bool score", "big id", "deep gt", "deep predictions",
                                  "device gt"])
def test_evaluate_refuses_hostile_inputs(run_tool, snapshot, tmp_path, case):
    gt, preds = tmp_path / "gt.json", tmp_path / "preds.json"
    gt.write_text(DEEP if case == "deep gt" else json.dumps(GT))
    bad = {"bool score": [PRED, {**PRED, "score": True}],
           "big id": [PRED, {**PRED, "image_id": TOO_BIG}]}.get(case, [PRED])
    preds.write_text(DEEP if case == "deep predictions" else json.dumps(bad))
    if case == "device gt":
        gt = Path("/dev/zero")
    expected = {"bool score": f"{preds}: prediction [1]: score must be a number, got True",
                "big id": f"{preds}: prediction [1]: image_id is out of range (int64)",
                "deep gt": f"{gt}: JSON nested too deeply",
                "deep predictions": f"{preds}: JSON nested too deeply",
                "device gt": "/dev/zero: ground truth file is not a regular file"}[case]
    snap = snapshot(tmp_path)
    code, _, err = run_tool("evaluate", "--gt", gt, "--predictions", preds,
                            "--json", tmp_path / "out/r.json")
    assert code == 1 and f"error: {expected}" in err, err
    snap.unchanged()


@pytest.mark.usefixtures("one_thread")
def test_evaluate_checkpoint_skips_and_counts_an_image_declaring_billions_of_pixels(
        run_tool, snapshot, tmp_path):
    """As predict.py does (issue 23): left out of the scored ground truth, one warning."""
    taxset = supertax.load([DRIVING])
    make_checkpoint(tmp_path / "last.pt", taxset)
    demo = make_demo(tmp_path / "demo", taxset)
    gt = json.loads((demo / "test/annotations.json").read_text())
    img = gt["images"][1]
    img["width"] = img["height"] = 40000
    png_declaring(demo / "test/images" / img["file_name"], 40000, 40000)
    (demo / "test/huge.json").write_text(json.dumps(gt))
    snap = snapshot(demo)
    code, _, err = run_tool("evaluate", "--gt", demo / "test/huge.json",
                            "--checkpoint", tmp_path / "last.pt", "--images", demo / "test/images",
                            "--workers", "0",
                            "--device", "cpu", "--save-predictions", tmp_path / "p.json")
    assert code == 0 and "Traceback" not in err, err
    assert (f"warning: 1 of {len(gt['images'])} images skipped (unreadable):\n  "
            f"{demo / 'test/images' / img['file_name']}: image too large to decode") in err
    assert img["id"] not in {p["image_id"] for p in json.loads((tmp_path / "p.json").read_text())}
    snap.unchanged()
