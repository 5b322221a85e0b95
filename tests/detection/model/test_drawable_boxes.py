"""Boxes that can be drawn (taxdet.detection.model.drawable_boxes): the rule in torch and NumPy,
and ``PredictBench`` with a box head forced to huge outputs."""

from __future__ import annotations

import logging
import math

import numpy as np
import pytest
import torch

from taxdet.detection.model.build import ModelConfig, create_model
from taxdet.detection.model.detector_wrappers import (
    Detections,
    PredictBench,
    rounded_xywh,
    to_coco_results,
)
from taxdet.detection.model.drawable_boxes import (
    INFO_KEY,
    MAX_SIZE_CODE,
    MIN_BOX_SIDE,
    DroppedBoxes,
    clamp_size_codes,
    degenerate_in_top,
    drawable_numpy,
    drawable_torch,
    warn_dropped,
)

pytestmark = pytest.mark.usefixtures("one_thread")

SIZES = ((100, 200), (128, 128), (300, 150))  # (h, w) original images


def test_the_clamp_is_torchvisions():
    from torchvision.models.detection._utils import BoxCoder
    assert MAX_SIZE_CODE == pytest.approx(BoxCoder((1.0, 1.0, 1.0, 1.0)).bbox_xform_clip)
    assert MIN_BOX_SIDE == 1.0


def test_clamp_touches_only_the_size_codes_in_torch_and_numpy():
    codes = torch.tensor([[1e4, -1e4, 1e4, -1e4], [0.1, 0.2, 0.3, float("nan")]])
    want = [[1e4, -1e4, MAX_SIZE_CODE, -1e4], [0.1, 0.2, 0.3, math.nan]]
    np.testing.assert_allclose(clamp_size_codes(codes).numpy(), want, rtol=1e-6)
    np.testing.assert_allclose(clamp_size_codes(codes.numpy()), want, rtol=1e-6)


def _hostile_boxes(n: int = 400, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    boxes = rng.normal(50, 200, (n, 4)).astype(np.float32)
    boxes[:, 2:] = boxes[:, :2] + rng.exponential(30, (n, 2))
    boxes[rng.random(n) < 0.1, rng.integers(0, 4)] = np.nan
    boxes[rng.random(n) < 0.1, 2] = np.inf
    boxes[rng.random(n) < 0.1, 0] = -np.inf
    slivers = rng.random(n) < 0.1
    boxes[slivers, 2:] = boxes[slivers, :2] + 0.5
    return boxes


@pytest.mark.parametrize("h, w", SIZES)
def test_torch_and_numpy_rules_agree_and_keep_only_drawable_boxes(h, w):
    boxes = _hostile_boxes()
    got_np, keep_np = drawable_numpy(boxes, h, w)
    got_t, keep_t = drawable_torch(torch.from_numpy(boxes), h, w)
    np.testing.assert_array_equal(keep_np, keep_t.numpy())
    np.testing.assert_array_equal(got_np[keep_np], got_t.numpy()[keep_np])
    kept = got_np[keep_np]
    assert 0 < len(kept) < len(boxes)
    assert np.isfinite(kept).all() and (kept >= 0).all()
    assert (kept[:, [0, 2]] <= w).all() and (kept[:, [1, 3]] <= h).all()
    assert (kept[:, 2:] - kept[:, :2] >= 1).all()
    assert not keep_np[~np.isfinite(boxes).all(1)].any()  # non-finite: dropped, not clipped


def test_degenerate_in_top_counts_what_would_have_been_among_the_detections():
    kept = np.array([0.9, 0.5, 0.2], np.float32)
    assert degenerate_in_top(kept, np.array([0.95, 0.6, 0.1, 0.0005]), 3, 0.001) == 2
    assert degenerate_in_top(kept, np.array([0.95, 0.6]), 100, 0.001) == 2
    assert degenerate_in_top(kept, np.array([0.1, np.nan]), 3, 0.001) == 0  # below the kept
    assert degenerate_in_top(kept[:0], np.array([0.1, 0.2]), 3, 0.5) == 0   # the threshold


def test_rounded_boxes_stay_inside_and_at_least_one_pixel():
    for box in ([0.004, 0.006, 1.005, 1.004], [638.999, 10.0, 640.0, 11.0049]):
        x, y, w, h = rounded_xywh(box)
        assert x >= 0 and y >= 0 and w >= 1 and h >= 1
        assert x + w <= math.ceil(box[2] * 100) / 100 + 1e-9
    dets = Detections(torch.tensor([[10.0, 20.0, 50.0, 80.0]]), torch.tensor([0.9]),
                      torch.tensor([4]))
    assert to_coco_results([dets], [7])[0]["bbox"] == [10.0, 20.0, 40.0, 60.0]


def forced_model(channels: tuple[int, ...], value: float = 1e4) -> torch.nn.Module:
    """A fresh D0 at 128 px whose box head outputs ``value`` on ``channels`` of (ty, tx, th,
    tw) at every anchor: its last conv's weights zero, its bias ``value`` there."""
    torch.manual_seed(0)
    model = create_model(ModelConfig("efficientdet_d0", image_size=128), 3).eval()
    conv = model.box_net.predict.conv_pw
    with torch.no_grad():
        conv.weight.zero_()
        bias = torch.zeros(conv.bias.numel() // 4, 4)
        bias[:, list(channels)] = value
        conv.bias.copy_(bias.reshape(-1))
    return model


def _predict(bench: PredictBench) -> list[Detections]:
    scales = torch.tensor([128 / max(h, w) for h, w in SIZES])
    return bench(torch.randn(len(SIZES), 3, 128, 128), scales, torch.tensor(SIZES))


def _assert_drawable(dets: list[Detections]) -> None:
    for d, (h, w) in zip(dets, SIZES):
        b = d.boxes
        assert torch.isfinite(b).all() and (b >= 0).all()
        assert (b[:, [0, 2]] <= w).all() and (b[:, [1, 3]] <= h).all()
        assert (b[:, 2:] - b[:, :2] >= 1).all()
        for x, y, bw, bh in (r["bbox"] for r in to_coco_results([d], [1])):
            assert bw >= 1 and bh >= 1 and x + bw <= w + 1e-6 and y + bh <= h + 1e-6


def test_huge_regressions_everywhere_give_no_box_and_are_counted():
    bench = PredictBench(forced_model((0, 1, 2, 3)), max_det_per_image=50)
    dets = _predict(bench)
    _assert_drawable(dets)
    assert [len(d.scores) for d in dets] == [0, 0, 0]  # every box far outside its image
    assert [d.dropped for d in dets] == [50, 50, 50]   # each would have filled the image's 50
    assert bench.dropped == DroppedBoxes(boxes=150, images=3)


def test_huge_size_regressions_are_clamped_to_drawable_boxes():
    bench = PredictBench(forced_model((2, 3)))
    dets = _predict(bench)
    _assert_drawable(dets)
    assert all(len(d.scores) > 0 for d in dets)
    assert bench.dropped.boxes == 0  # clamped at 62.5 x the anchor: clipped, not dropped


def test_one_warning_line_and_the_info_entry(caplog):
    dropped = DroppedBoxes()
    for n in (3, 0, 2):
        dropped.add(n)
    with caplog.at_level(logging.WARNING):
        warn_dropped(dropped, "--checkpoint x.pt", logging.getLogger("t"))
        warn_dropped(DroppedBoxes(), "--checkpoint y.pt", logging.getLogger("t"))
    assert len(caplog.records) == 1
    assert "--checkpoint x.pt: dropped 5 degenerate boxes on 2 images" in caplog.text
    assert dropped.info()[INFO_KEY]["boxes"] == 5 and dropped.info()[INFO_KEY]["images"] == 2
