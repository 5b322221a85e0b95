"""taxdet.detection.prediction.drawing: boxes land on the right pixels in class colours; the grid
PNG."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from taxdet.detection.model.detector_wrappers import Detections
from taxdet.detection.prediction.drawing import (
    TILE,
    class_colour,
    draw_detections,
    draw_ground_truth,
    results_by_image,
    save_prediction_grid,
)

NAMES = ["person", "pedestrian_adult", "pedestrian_child", "vehicle", "car", "truck",
         "traffic_light"]
GREY = (128, 128, 128)


def _dets(rows) -> Detections:
    """rows of (x1, y1, x2, y2, score, column)."""
    t = torch.tensor(rows, dtype=torch.float32).reshape(-1, 6)
    return Detections(t[:, :4], t[:, 4], t[:, 5].long())


def test_predicted_box_outline_is_drawn_in_its_class_colour_where_the_box_is():
    image = Image.new("RGB", (200, 150), GREY)
    out = np.asarray(draw_detections(image, _dets([(40, 60, 120, 140, 0.9, 4)]), NAMES))
    car = class_colour(4)
    # outline width 2 from x1 = 40 inwards: columns 40 and 41 on the left edge, rows 60..140
    assert tuple(out[100, 40]) == car and tuple(out[100, 41]) == car
    assert tuple(out[100, 120]) == car and tuple(out[140, 80]) == car    # right and bottom edges
    assert tuple(out[100, 80]) == GREY                                  # inside stays untouched
    assert tuple(out[100, 30]) == GREY and tuple(out[100, 130]) == GREY  # outside too
    assert tuple(out[50, 42]) == car   # the label tag sits above the box, filled in its colour
    assert np.asarray(image).max() == 128  # the input image is not modified


def test_detections_below_the_score_threshold_are_not_drawn():
    image = Image.new("RGB", (100, 100), GREY)
    out = np.asarray(draw_detections(image, _dets([(10, 10, 90, 90, 0.29, 0)]), NAMES,
                                     score_threshold=0.3))
    assert (out == 128).all()


def test_label_tag_goes_inside_a_box_touching_the_top_edge():
    out = np.asarray(draw_detections(np.full((100, 100, 3), 128, np.uint8),
                                     _dets([(10, 0, 90, 90, 0.9, 6)]), NAMES))
    light = class_colour(6)
    # the tag (text ~10 px high + 4 px padding) starts at the box's top y = 0 instead of above
    # the image: below the 2 px outline, rows 2..11 at x 12..30 are tag fill or white text
    tag = out[2:12, 12:30].reshape(-1, 3)
    assert not (tag == GREY).all(axis=1).any()
    assert (tag == light).all(axis=1).sum() > len(tag) // 3


def test_ground_truth_is_dashed_white_over_a_black_line():
    image = Image.new("RGB", (100, 100), GREY)
    out = np.asarray(draw_ground_truth(image, [[10, 20, 90, 80]]))
    top = [tuple(p) for p in out[20, 10:91]]
    assert top[0] == (255, 255, 255)                        # dash starts at the corner
    assert (0, 0, 0) in top and (255, 255, 255) in top      # 6 px white, 4 px black gaps
    assert tuple(out[50, 50]) == GREY


def test_results_by_image_converts_xywh_and_category_ids_to_columns():
    dets = results_by_image([{"image_id": 3, "category_id": 5, "bbox": [10, 20, 30, 40],
                              "score": .5}])
    assert dets[3].boxes.tolist() == [[10, 20, 40, 60]] and dets[3].classes.tolist() == [4]


@pytest.fixture
def gt_files(tmp_path):
    for i in (1, 2):
        Image.new("RGB", (128, 96), (60 * i, 90, 120)).save(tmp_path / f"{i}.png")
    gt = {"images": [{"id": i, "file_name": f"{i}.png", "width": 128, "height": 96}
                     for i in (1, 2)],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 5, "bbox": [10, 10, 50, 40]}],
          "categories": [{"id": j + 1, "name": n} for j, n in enumerate(NAMES)]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    return tmp_path


def test_prediction_grid_writes_one_tile_per_image_with_boxes_scaled_to_the_tile(gt_files):
    results = [{"image_id": 1, "category_id": 5, "bbox": [10, 10, 50, 40], "score": 0.8}]
    path = save_prediction_grid(results, gt_files / "gt.json", None, NAMES,
                                gt_files / "out" / "grid.png", count=6)
    grid = np.asarray(Image.open(path).convert("RGB"))
    # 2 tiles of 384 x 288 (128 x 96 enlarged 3x) side by side, gaps of 4 px; legend 28 px below
    assert grid.shape[0] == 288 + 4 + 28 and grid.shape[1] >= 2 * (TILE + 4) - 4
    # the box's right edge x2 = 60 px -> 180 in the 3x tile, mid-height y = 30 -> 90
    assert tuple(grid[90, 179]) == class_colour(4) or tuple(grid[90, 180]) == class_colour(4)


def test_prediction_grid_reports_missing_files(gt_files):
    (gt_files / "2.png").unlink()
    with pytest.raises(FileNotFoundError, match="image id 2"):
        save_prediction_grid([], gt_files / "gt.json", None, NAMES, gt_files / "g.png")
