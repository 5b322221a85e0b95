"""Anchor fit: best IoU per box equals a search over every effdet anchor; BPR and proposals."""

import pytest
import torch
from effdet.anchors import Anchors
from torchvision.ops import box_iou

from taxdet.detection.anchors import fit


def random_boxes(n: int, size: int, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    wh = torch.exp(torch.empty(n, 2).uniform_(1.5, 5.5, generator=g))  # ~4 px .. ~245 px
    xy = torch.rand(n, 2, generator=g) * size
    return torch.cat([xy, xy + wh], 1).clamp(max=size)


@pytest.mark.parametrize("size, spec", [
    (256, fit.AnchorSpec()),
    (384, fit.AnchorSpec(2.5, ((0.6, 1.7), (1.0, 1.0), (1.5, 0.67)), num_scales=2)),
    (128, fit.AnchorSpec(1.0)),
])
def test_best_iou_equals_the_maximum_over_every_effdet_anchor(size, spec):
    boxes = random_boxes(300, size).double()
    anchors = Anchors(3, 7, spec.num_scales, list(spec.aspect_ratios), spec.anchor_scale,
                      (size, size)).boxes[:, [1, 0, 3, 2]].double()   # y1x1y2x2 -> x1y1x2y2
    expected = box_iou(boxes, anchors).amax(dim=1)
    assert torch.allclose(fit.best_iou(boxes, spec, size), expected, atol=1e-6)


def test_a_box_equal_to_an_anchor_has_iou_one():
    # level 3 (stride 8), octave 0, aspect (1, 1), scale 4: a 32 x 32 anchor centred at (4, 4)
    box = torch.tensor([[4 - 16.0, 4 - 16.0, 4 + 16.0, 4 + 16.0]])
    assert fit.best_iou(box, fit.AnchorSpec(), 256).item() == pytest.approx(1.0)


def test_bpr_counts_boxes_whose_best_anchor_reaches_the_threshold():
    # a 32 x 32 box (IoU 1 with a level-3 anchor) and a 4 x 4 box: the smallest anchor is
    # 32 x 32, so its best IoU is at most 16 / 1024 < 0.5
    boxes = torch.tensor([[100.0 - 12, 100 - 12, 100 + 20, 100 + 20], [50, 50, 54, 54]])
    result = fit.evaluate_spec(fit.AnchorSpec(), boxes, 256)
    assert result.bpr == pytest.approx(0.5)


def test_search_prefers_smaller_anchors_for_small_boxes():
    boxes = torch.tensor([[10.0 + 20 * i, 10, 22 + 20 * i, 22] for i in range(10)])  # 12 px
    best = fit.search(boxes, 256)[0]
    assert best.spec.anchor_scale < 4.0
    assert best.bpr > fit.evaluate_spec(fit.AnchorSpec(), boxes, 256).bpr


def test_data_aspects_keep_the_anchor_area_and_follow_the_boxes():
    tall = torch.tensor([[0.0, 0, 10, 40]] * 5 + [[0.0, 0, 20, 20]] * 5)
    aspects = fit.data_aspects(tall)
    assert all(x * y == pytest.approx(1.0, abs=1e-3) for x, y in aspects)
    assert aspects[0][1] == pytest.approx(2.0, abs=0.01)   # h / w = 4 -> y multiplier 2


def test_model_input_boxes_scale_by_the_long_side():
    class S:  # the two Sample fields the fit reads, and its boxes
        width, height, boxes = 512, 256, [[0.0, 0.0, 100.0, 50.0]]
    assert fit.model_input_boxes([S()], 256).tolist() == [[0.0, 0.0, 50.0, 25.0]]
