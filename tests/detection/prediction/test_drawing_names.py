"""taxdet.detection.prediction.drawing: ground-truth class names, customer ids and names, one
drawing per image."""

from __future__ import annotations

import numpy as np
from PIL import Image

from taxdet.detection.prediction.drawing import (
    class_colour,
    draw_ground_truth,
    drawing_path,
    save_drawings,
)

GREY = (128, 128, 128)


def test_ground_truth_boxes_are_named():
    plain = np.asarray(draw_ground_truth(Image.new("RGB", (120, 80), GREY), [[10, 10, 100, 70]]))
    named = np.asarray(draw_ground_truth(Image.new("RGB", (120, 80), GREY), [[10, 10, 100, 70]],
                                         ["Car"]))
    inside = (slice(55, 68), slice(12, 40))  # the name sits at the box's bottom left
    assert (plain[inside] == 128).all() and (named[inside] == 255).all(axis=-1).any()


def test_drawings_use_the_given_ids_and_names_one_png_per_image(tmp_path):
    Image.new("RGB", (64, 48), GREY).save(tmp_path / "a.png")
    images = [{"id": 1, "file_name": "a.png", "width": 64, "height": 48}]
    results = [{"image_id": 1, "category_id": 30, "bbox": [10, 10, 30, 20], "score": 0.9},
               {"image_id": 1, "category_id": 99, "bbox": [0, 0, 5, 5], "score": 0.9}]
    (path,) = save_drawings(results, images, tmp_path, {10: "Truck", 30: "Car"}, tmp_path / "d")
    assert path == drawing_path(tmp_path / "d", "a.png") == tmp_path / "d" / "a.png.png"
    out = np.asarray(Image.open(path).convert("RGB"))
    assert tuple(out[20, 10]) == class_colour(1)   # Car: second of the ids in order
    assert tuple(out[2, 4]) == GREY                # an id without a name is not drawn
