"""taxdet.detection.export.postprocess: NumPy top-k + NMS give ``PredictBench``'s detections
(effdet's, with the drawable-box rule)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from effdet.anchors import Anchors
from effdet.bench import _post_process
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
from taxdet.detection.model.detector_wrappers import image_detections
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


def _torch_detections(codes, logits, anchors, scales, orig_sizes, max_points):
    """``PredictBench``'s post-processing (effdet's top-k, then ``image_detections``) on flat
    [B, A, *] outputs."""
    B, A, K = logits.shape
    cls_top, box_top, indices, classes = _post_process(
        [logits.permute(0, 2, 1)[:, :, None]], [codes.permute(0, 2, 1)[:, :, None]],
        num_levels=1, num_classes=K, max_detection_points=max_points)
    return [image_detections(cls_top[i, :, 0], box_top[i], anchors[indices[i]], classes[i],
                             scales[i], orig_sizes[i]) for i in range(B)]


def _outputs(code_spread: float, seed: int = 0):
    anchors = Anchors.from_config(effdet_config(ModelConfig("efficientdet_d0",
                                                            image_size=TINY_SIZE), 3)).boxes
    gen = torch.Generator().manual_seed(seed)
    B, A, K = 2, anchors.shape[0], 3
    logits = torch.randn(B, A, K, generator=gen) * 2 - 3
    codes = torch.randn(B, A, 4, generator=gen) * code_spread
    return anchors, logits, codes


@pytest.mark.parametrize("code_spread", [0.3, 30.0])  # 30: most boxes absurd or degenerate
def test_detect_equals_the_torch_post_processing(code_spread):
    anchors, logits, codes = _outputs(code_spread)
    scales = torch.tensor([0.8, 1.6])
    orig = torch.tensor([[100, 160], [80, 50]])  # (h, w)
    want = _torch_detections(codes, logits, anchors, scales, orig, max_points=5000)
    got = detect_batch(decode_boxes(codes, anchors).numpy(), logits.numpy(), scales.numpy(),
                       orig.numpy())
    for g, w, (h, wd) in zip(got, want, orig.tolist()):
        assert len(g.scores) == len(w.scores)
        assert len(w.scores) == 100 if code_spread < 1 else len(w.scores) > 10
        np.testing.assert_allclose(g.boxes, w.boxes.numpy(), atol=1e-4)
        np.testing.assert_allclose(g.scores, w.scores.numpy(), atol=1e-6)
        np.testing.assert_array_equal(g.classes, w.classes.numpy())
        assert g.dropped == w.dropped
        assert g.dropped > 0  # boxes outside the image, clipped to under 1 px
        assert np.isfinite(g.boxes).all() and (g.boxes >= 0).all()
        assert (g.boxes[:, 2:] - g.boxes[:, :2] >= 1).all()
        assert (g.boxes[:, [0, 2]] <= wd).all() and (g.boxes[:, [1, 3]] <= h).all()


def test_non_finite_boxes_from_an_old_export_are_dropped():
    boxes = np.array([[0, 0, 10, 10], [np.nan] * 4, [-np.inf, 0, np.inf, 10], [5, 5, 5.5, 9]],
                     np.float32)
    logits = np.array([[0.0], [9.0], [8.0], [7.0]], np.float32)
    dets = detect(boxes, logits, 1.0, (100, 100))
    np.testing.assert_allclose(dets.boxes, [[0, 0, 10, 10]])
    assert dets.dropped == 3 and dets.anchors.tolist() == [0]


def test_detect_thresholds_and_caps():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [50, 50, 60, 60]], np.float32)
    logits = np.array([[2.0], [1.0], [-9.0]], np.float32)  # sigmoid(-9) = 1.2e-4
    dets = detect(boxes, logits, 0.5, (100, 100))
    np.testing.assert_allclose(dets.boxes, [[0, 0, 20, 20]])  # the overlap suppressed
    cfg = PostprocessConfig(score_threshold=0.0, iou_threshold=0.9, max_det_per_image=2)
    dets = detect(boxes, logits, 1.0, (8, 200), cfg)  # clipped to height 8
    np.testing.assert_allclose(dets.boxes, [[0, 0, 10, 8], [1, 1, 11, 8]])
    assert dets.classes.dtype == np.int64
