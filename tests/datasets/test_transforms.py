"""Albumentations pipelines: boxes stay on their pixels, eval is exact, drops are counted."""

from __future__ import annotations

import numpy as np
import pytest

from taxdet.datasets.transforms import PAD_FILL, AugmentConfig, eval_transform, train_transform

H, W = 200, 300   # original image, landscape: fit scale to 256 = 256 / 300
RED_BOX = np.array([40, 50, 110, 150], np.float32)     # left half
BLUE_BOX = np.array([180, 60, 260, 120], np.float32)   # right half


def two_box_image() -> np.ndarray:
    """Grey noise with a filled red and a filled blue rectangle (end-exclusive boxes)."""
    img = np.random.default_rng(0).integers(118, 138, (H, W, 3)).astype(np.uint8)
    x1, y1, x2, y2 = RED_BOX.astype(int)
    img[y1:y2, x1:x2] = (230, 20, 20)
    x1, y1, x2, y2 = BLUE_BOX.astype(int)
    img[y1:y2, x1:x2] = (20, 20, 230)
    return img


def colour_mask(img: np.ndarray, channel: int) -> np.ndarray:
    """[H, W] bool: the channel beats both others by 60 (robust to colour jitter)."""
    x = img.astype(np.int32)
    others = np.delete(x, channel, axis=2).max(axis=2)
    return x[..., channel] - others > 60


def coverage(mask: np.ndarray, box: np.ndarray) -> tuple[float, float]:
    """(fraction of the box interior that is coloured, coloured pixels outside box / box area)."""
    x1, y1, x2, y2 = box
    inner = mask[int(np.ceil(y1)) + 1:int(y2) - 1, int(np.ceil(x1)) + 1:int(x2) - 1]
    outer = mask.copy()
    outer[max(int(y1) - 1, 0):int(np.ceil(y2)) + 1, max(int(x1) - 1, 0):int(np.ceil(x2)) + 1] = 0
    return float(inner.mean()), float(outer.sum()) / ((x2 - x1) * (y2 - y1))


def run_train(seed: int, **cfg):
    t = train_transform(AugmentConfig(image_size=256, **cfg), seed=seed)
    return t(two_box_image(), np.stack([RED_BOX, BLUE_BOX]), np.array([3, 5]),
             np.array([2.0, 0.5], np.float32))


def test_train_boxes_still_cover_their_drawn_pixels_over_seeds():
    flipped = unflipped = 0
    for seed in range(12):
        out = run_train(seed)
        assert out.image.shape == (256, 256, 3)
        assert len(out.boxes) + out.dropped_boxes == 2
        for box, cls, w, row in zip(out.boxes, out.classes, out.box_weights, out.ann_index):
            channel = 0 if cls == 3 else 2           # class 3 = the red box, 5 = the blue
            assert (cls, w) == ((3, 2.0) if row == 0 else (5, 0.5))
            inside, outside = coverage(colour_mask(out.image, channel), box)
            assert inside >= 0.9 and outside <= 0.03, (seed, cls, inside, outside)
        if len(out.boxes) == 2:
            red_x = out.boxes[out.classes == 3, 0][0]
            blue_x = out.boxes[out.classes == 5, 0][0]
            flipped += red_x > blue_x
            unflipped += red_x < blue_x
    assert flipped and unflipped   # both branches of the flip were checked


def test_train_scale_is_the_box_scaling_and_jitters_in_range():
    fit = 256 / 300
    factors = []
    for seed in range(10):
        out = run_train(seed, scale_jitter=(0.5, 1.0))  # <= 1: nothing cropped
        factors.append(out.scale / fit)
        w_in = RED_BOX[2] - RED_BOX[0]
        w_out = out.boxes[out.classes == 3]
        assert (w_out[0, 2] - w_out[0, 0]) / w_in == pytest.approx(out.scale, rel=0.01)
    assert 0.5 - 0.01 <= min(factors) < max(factors) <= 1.0 + 0.01
    assert max(factors) - min(factors) > 0.1


def test_eval_is_deterministic_and_boxes_scale_exactly():
    t = eval_transform(AugmentConfig(image_size=256))
    img = np.zeros((100, 200, 3), np.uint8)   # 200 -> 256: scale 1.28, 100 -> 128 exactly
    boxes = np.array([[10, 20, 50, 60], [0, 0, 200, 100]], np.float32)
    a = t(img, boxes, np.array([1, 2]), np.ones(2, np.float32), np.array([[5, 5, 25, 15.]]))
    b = t(img, boxes, np.array([1, 2]), np.ones(2, np.float32), np.array([[5, 5, 25, 15.]]))
    assert a.scale == 1.28
    np.testing.assert_allclose(a.boxes, boxes * 1.28, atol=1e-4)  # e.g. 50 * 1.28 = 64
    np.testing.assert_allclose(a.ignore, [[6.4, 6.4, 32.0, 19.2]], atol=1e-4)
    np.testing.assert_array_equal(a.image, b.image)
    np.testing.assert_array_equal(a.boxes, b.boxes)
    assert (a.image[128:] == PAD_FILL).all() and (a.image[:128] == 0).all()  # top-left anchored


def test_eval_short_side_rounding_stays_under_half_a_pixel():
    t = eval_transform(AugmentConfig(image_size=256))
    img = np.zeros((199, 300, 3), np.uint8)   # 199 * 256 / 300 = 169.8 -> 170 rows
    boxes = np.array([[30, 40, 290, 198]], np.float32)
    out = t(img, boxes, np.array([0]), np.ones(1, np.float32))
    assert out.scale == pytest.approx(256 / 300)
    assert np.abs(out.boxes / out.scale - boxes).max() * out.scale < 0.5


def test_tiny_boxes_are_dropped_consistently_and_counted():
    t = eval_transform(AugmentConfig(image_size=256, min_area=4.0))
    img = np.zeros((1000, 1000, 3), np.uint8)  # scale 0.256: a 4x4 box becomes ~1 px^2
    boxes = np.array([[0, 0, 100, 100], [500, 500, 504, 504], [600, 600, 900, 700]], np.float32)
    out = t(img, boxes, np.array([4, 5, 6]), np.array([1.0, 2.0, 3.0], np.float32),
            np.array([[10, 10, 12, 12], [0, 0, 500, 500]], np.float32))
    assert out.dropped_boxes == 1 and out.dropped_ignore == 1
    np.testing.assert_array_equal(out.ann_index, [0, 2])
    np.testing.assert_array_equal(out.classes, [4, 6])
    np.testing.assert_array_equal(out.box_weights, [1.0, 3.0])
    np.testing.assert_allclose(out.boxes, boxes[[0, 2]] * 0.256, atol=1e-4)
    np.testing.assert_allclose(out.ignore, [[0, 0, 128, 128]], atol=1e-4)


def test_no_boxes_is_fine():
    out = run_train(0)
    t = train_transform(AugmentConfig(image_size=128), seed=0)
    empty = t(two_box_image(), np.zeros((0, 4)), np.zeros(0), np.zeros(0))
    assert empty.boxes.shape == (0, 4) and empty.ignore.shape == (0, 4) and out.boxes.ndim == 2


def test_bad_config_is_rejected():
    with pytest.raises(ValueError, match="scale_jitter"):
        AugmentConfig(scale_jitter=(1.2, 0.8))
