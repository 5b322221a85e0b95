"""tools/predict.py --format coco as CVAT takes it (datumaro's coco_instances, no warning) and
--format label-studio (tasks with predictions, and the labeling config beside them)."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil

import pytest

from taxdet.detection.serving.label_config import read_labeling_config
from tests.tools.test_prelabel_ids import CUSTOMER, RUN, world  # noqa: F401 (fixture)

pytestmark = pytest.mark.usefixtures("one_thread")
LABELS = ["Pedestrian_adult", "Pedestrian_child", "Car", "Truck"]


def test_coco_imports_in_datumaro_without_a_warning(world, run_tool, tmp_path, caplog):  # noqa: F811
    datumaro = pytest.importorskip("datumaro")
    out = tmp_path / "cvat" / "annotations" / "instances_default.json"
    out.parent.mkdir(parents=True)
    code, _, err = run_tool("predict", "--checkpoint", world.ckpt, "--customer", CUSTOMER,
                            "--images", world.images, "--score-threshold", "0",
                            "--max-detections", "5", "--out", out, *RUN)
    assert code == 0, err
    pre = json.loads(out.read_text())
    assert all(a["segmentation"] == [] and a["iscrowd"] == 0 and a["area"] > 0 and "score" in a
               for a in pre["annotations"]) and len(pre["annotations"]) == 20
    shutil.copytree(world.images, tmp_path / "cvat" / "images" / "default")
    with caplog.at_level(logging.WARNING):
        dataset = datumaro.Dataset.import_from(str(tmp_path / "cvat"), "coco_instances")
        items = list(dataset)
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING] == []
    labels = dataset.categories()[datumaro.AnnotationType.label]
    assert [c.name for c in labels.items] == LABELS
    boxes = [a for item in items for a in item.annotations]
    assert len(items) == 4 and len(boxes) == 20
    assert all(0 < a.attributes["score"] <= 1 for a in boxes)


def test_label_studio_tasks_carry_scored_predictions_and_the_config(world, run_tool,  # noqa: F811
                                                                     tmp_path):
    out = tmp_path / "tasks.json"
    code, printed, err = run_tool("predict", "--checkpoint", world.ckpt, "--customer", CUSTOMER,
                                  "--images", world.images, "--score-threshold", "0",
                                  "--max-detections", "7", "--format", "label-studio",
                                  "--out", out, *RUN)
    assert code == 0, err
    tasks = json.loads(out.read_text())
    digest = hashlib.sha256(world.ckpt.read_bytes()).hexdigest()[:12]
    assert sorted(t["data"]["file_name"] for t in tasks) == sorted(
        i["file_name"] for i in json.loads(world.gt.read_text())["images"])
    for task in tasks:
        assert task["data"]["image"] == "/data/local-files/?d=" + task["data"]["file_name"]
        (pred,) = task["predictions"]
        assert pred["model_version"] == f"last-{digest}" and 0 < pred["score"] <= 1
        assert len(pred["result"]) == 7
        for region in pred["result"]:
            v = region["value"]
            assert region["type"] == "rectanglelabels" and 0 < region["score"] <= 1
            assert v["rectanglelabels"][0] in LABELS
            assert 0 <= v["x"] and v["x"] + v["width"] <= 100.001 and v["width"] > 0
            assert 0 <= v["y"] and v["y"] + v["height"] <= 100.001 and v["height"] > 0
    config = read_labeling_config((tmp_path / "tasks.label_config.xml").read_text())
    assert config.labels == tuple(LABELS)
    assert (config.from_name, config.to_name, config.image_key) == ("label", "image", "image")
    assert "tasks.label_config.xml" in printed
    # a task file has no room for the counts: the summary says what was dropped and skipped
    assert "dropped 0 degenerate boxes on 0 images, skipped 0 unreadable images" in printed
