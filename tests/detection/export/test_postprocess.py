"""taxdet.detection.export.postprocess: NumPy top-k + NMS give effdet's detections."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from effdet.anchors import Anchors
from effdet.bench import _batch_detection, _post_process
from torchvision.ops import batched_nms

from taxdet.detection.export.export_net import decode_boxes
from taxdet.detection.export.postprocess import (
    PostprocessConfig,
    detect,
    detect_batch,
    per_class_nms,
    top_candidates,
)
from taxdet.detection.model.build import ModelConfig, effdet_config
from tests.factories import TINY_SIZE

pytestmark = pytest.mark.usefixtures("one_thread")


def _random_boxes(n: int, rng) -> np.ndarray:
    xy = rng.uniform(0, 100, (n, 2))
    wh = rng.uniform(5, 40, (n, 2))
    return np.concatenate([xy, xy + wh], 1).astype(np.float32)


@pytest.mark.parametrize("n", [50, 2000])  # torchvision switches algorithm above 1000 boxes
def test_per_class_nms_keeps_what_torchvision_keeps_in_the_same_order(n):
    rng = np.random.default_rng(n)
    boxes, scores = _random_boxes(n, rng), rng.random(n).astype(np.float32)
    classes = rng.integers(0, 4, n)
    want = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                       torch.from_numpy(classes), 0.5).numpy()
    np.testing.assert_array_equal(per_class_nms(boxes, scores, classes, 0.5), want)
    np.testing.assert_array_equal(per_class_nms(boxes, scores, classes, 0.5, max_keep=10),
                                  want[:10])


def test_empty_boxes_are_never_suppressed_and_never_suppress_like_torchvision():
    boxes = np.array([[5, 5, 5, 5], [5, 5, 5, 5], [0, 0, 10, 10], [0, 0, 10, 9]], np.float32)
    scores = np.array([0.9, 0.8, 0.7, 0.6], np.float32)
    classes = np.zeros(4, np.int64)
    want = batched_nms(torch.from_numpy(boxes), torch.from_numpy(scores),
                       torch.from_numpy(classes), 0.5).numpy()
    np.testing.assert_array_equal(per_class_nms(boxes, scores, classes, 0.5), want)
    assert want.tolist() == [0, 1, 2]  # 0 / 0 IoU: kept


def test_top_candidates_are_the_k_best_pairs_best_first():
    logits = np.array([[0.1, 0.9], [0.5, -1.0], [0.7, 0.2]], np.float32)
    anchor, cls = top_candidates(logits, 3)
    assert list(zip(anchor, cls)) == [(0, 1), (2, 0), (1, 0)]
    assert len(top_candidates(logits, 100)[0]) == 6  # k above A x K: every pair


def _effdet_detections(codes, logits, anchors, scales, orig_sizes, max_points):
    """effdet's own post-processing (as PredictBench calls it) on flat [B, A, *] outputs."""
    B, A, K = logits.shape
    cls_top, box_top, indices, classes = _post_process(
        [logits.permute(0, 2, 1)[:, :, None]], [codes.permute(0, 2, 1)[:, :, None]],
        num_levels=1, num_classes=K, max_detection_points=max_points)
    img_scale = (1.0 / scales).float()
    return _batch_detection(B, cls_top, box_top, anchors, indices, classes, img_scale,
                            orig_sizes.flip(-1).float(), max_det_per_image=100)


def test_detect_equals_effdets_post_processing():
    anchors = Anchors.from_config(effdet_config(ModelConfig("efficientdet_d0",
                                                            image_size=TINY_SIZE), 3)).boxes
    gen = torch.Generator().manual_seed(0)
    B, A, K = 2, anchors.shape[0], 3
    logits = torch.randn(B, A, K, generator=gen) * 2 - 3
    codes = torch.randn(B, A, 4, generator=gen) * 0.3
    scales = torch.tensor([0.8, 1.6])
    orig = torch.tensor([[100, 160], [80, 50]])  # (h, w)
    want = _effdet_detections(codes, logits, anchors, scales, orig, max_points=5000)
    got = detect_batch(decode_boxes(codes, anchors).numpy(), logits.numpy(), scales.numpy(),
                       orig.numpy())
    for g, w in zip(got, want):
        w = w[w[:, 4] > 0.001]
        assert len(g.scores) == len(w) == 100
        np.testing.assert_allclose(g.boxes, w[:, :4], atol=1e-4)
        np.testing.assert_allclose(g.scores, w[:, 4], atol=1e-6)
        np.testing.assert_array_equal(g.classes, w[:, 5].long() - 1)
        assert (g.boxes >= 0).all()


def test_detect_thresholds_and_caps():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    logits = np.array([[2.0], [1.0], [-9.0]], np.float32)  # sigmoid(-9) = 1.2e-4
    dets = detect(boxes, logits, 0.5, (100, 100))
    np.testing.assert_allclose(dets.boxes, [[0, 0, 20, 20]])  # the overlap suppressed
    cfg = PostprocessConfig(score_threshold=0.0, iou_threshold=0.9, max_det_per_image=2)
    dets = detect(boxes, logits, 1.0, (8, 200), cfg)  # clipped to height 8
    np.testing.assert_allclose(dets.boxes, [[0, 0, 10, 8], [1, 1, 11, 8]])
    assert dets.classes.dtype == np.int64
