"""Anchor labeler: parity with effdet's AnchorLabeler, the ignore band, ignore regions, batching."""
from __future__ import annotations

import effdet
import pytest
import torch
from effdet.anchors import AnchorLabeler as EffdetLabeler
from effdet.anchors import Anchors
from torchvision.ops import box_iou

from taxdet.core.targets import BACKGROUND, IGNORE, PADDING
from taxdet.detection.anchors.labeler import AnchorLabeler, AnchorTargets, LabelerConfig

EFFDET_PARITY = LabelerConfig(pos_iou=0.5, neg_iou=0.5)


@pytest.fixture(scope="module")
def anchors() -> Anchors:
    """EfficientDet-D0 anchors at 128x128: levels 3..7, 9 per location.

    16*16*9 + 8*8*9 + 4*4*9 + 2*2*9 + 1*1*9 = 2304 + 576 + 144 + 36 + 9 = 3069 anchors.
    """
    config = effdet.get_efficientdet_config("efficientdet_d0")
    config.image_size = (128, 128)
    return Anchors.from_config(config)


@pytest.fixture(scope="module")
def row_anchors() -> Anchors:
    """One row of four 32x32 anchors: level 3 of an 8x32 image, stride 8, anchor_scale 4: 4*8 = 32.

    Centres x = 4, 12, 20, 28 and y = 4, so anchor j is x [8j - 12, 8j + 20], y [-12, 20].
    """
    return Anchors(min_level=3, max_level=3, num_scales=1, aspect_ratios=[(1.0, 1.0)],
                   anchor_scale=4.0, image_size=(8, 32))


def effdet_targets(anchors: Anchors, boxes: torch.Tensor, classes: torch.Tensor) -> AnchorTargets:
    """effdet's batch_label_anchors, flattened, on our inputs.

    Inputs converted: x1y1x2y2 -> y1x1y2x2, column -> column + 1 (effdet subtracts 1 again).
    """
    labeler = EffdetLabeler(anchors, num_classes=7, match_threshold=0.5)
    one_based = torch.where(classes == PADDING, -1, classes + 1)
    cls, box, num_positives = labeler.batch_label_anchors(boxes[..., [1, 0, 3, 2]], one_based)
    batch = boxes.shape[0]
    cls = torch.cat([c.reshape(batch, -1) for c in cls], dim=1)
    box = torch.cat([b.reshape(batch, -1, 4) for b in box], dim=1)
    return AnchorTargets(cls, box, (cls >= 0).float(), num_positives)


def random_boxes(batch: int, count: int, size: float, seed: int):
    """Boxes from 2% to 60% of the image side (some partly outside the image), classes 0..6."""
    gen = torch.Generator().manual_seed(seed)
    wh = size * (0.02 + 0.58 * torch.rand(batch, count, 2, generator=gen) ** 2)
    xy = (size * 1.1 - wh) * torch.rand(batch, count, 2, generator=gen) - 0.05 * size
    return torch.cat([xy, xy + wh], dim=-1), torch.randint(0, 7, (batch, count), generator=gen)


def assert_same(ours: AnchorTargets, reference: AnchorTargets) -> None:
    assert torch.equal(ours.cls_targets, reference.cls_targets)
    assert torch.equal(ours.box_targets, reference.box_targets)
    assert torch.equal(ours.num_positives, reference.num_positives)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_targets_equal_effdet_batch_label_anchors(anchors, seed):
    boxes, classes = random_boxes(batch=4, count=12, size=128, seed=seed)
    classes[1, 5:] = PADDING            # trailing padding
    classes[2, [0, 3, 7]] = PADDING     # padding rows between real boxes
    classes[3] = PADDING                # an image with no boxes, only padding rows
    ours = AnchorLabeler(anchors, EFFDET_PARITY)(boxes, classes)
    reference = effdet_targets(anchors, boxes, classes)
    assert_same(ours, reference)
    assert ours.cls_targets.shape == (4, 3069)
    assert ours.num_positives[3] == 0 and ours.num_positives[:3].min() > 0
    assert ours.box_targets.dtype == torch.float32 and ours.cls_targets.dtype == torch.int64


def test_empty_batch_is_all_background_and_equals_effdet(anchors):
    boxes, classes = torch.zeros(2, 0, 4), torch.zeros(2, 0, dtype=torch.int64)
    ours = AnchorLabeler(anchors)(boxes, classes, torch.zeros(2, 0), torch.zeros(2, 0, 4))
    assert (ours.cls_targets == BACKGROUND).all()
    assert ours.num_positives.tolist() == [0.0, 0.0]
    assert (ours.box_targets == 0).all() and (ours.box_weights == 0).all()
    ours = AnchorLabeler(anchors, EFFDET_PARITY)(boxes, classes)
    assert_same(ours, effdet_targets(anchors, boxes, classes))


def test_two_boxes_forcing_one_anchor_keep_the_lower_row_like_effdet(anchors):
    # Two identical 6x6 boxes (classes 3 and 5): best IoU with any anchor is far below 0.5
    # (36 / ~1000 for a 32x32-sized anchor), so each box only has its force-matched anchor,
    # and both force-match the same one. effdet's one-hot max over rows keeps the lower row.
    boxes = torch.tensor([[[60.0, 60.0, 66.0, 66.0], [60.0, 60.0, 66.0, 66.0]]])
    classes = torch.tensor([[3, 5]])
    ours = AnchorLabeler(anchors, EFFDET_PARITY)(boxes, classes)
    assert_same(ours, effdet_targets(anchors, boxes, classes))
    assert ours.num_positives.item() == 1
    assert (ours.cls_targets == 3).sum() == 1 and not (ours.cls_targets == 5).any()


def test_best_anchor_tie_picks_the_lowest_anchor_index_like_effdet(anchors):
    # An 8x8 box centred between grid points (x = 40 lies between anchor centres 36 and 44) is
    # inside several equal-sized anchors, so its best IoU (64 / anchor area) is shared.
    boxes = torch.tensor([[[36.0, 32.0, 44.0, 40.0]]])
    classes = torch.tensor([[2]])
    ours = AnchorLabeler(anchors, EFFDET_PARITY)(boxes, classes)
    assert_same(ours, effdet_targets(anchors, boxes, classes))
    iou = box_iou(boxes[0, :, [1, 0, 3, 2]], anchors.boxes)[0]  # independent IoU (torchvision)
    tied = (iou == iou.max()).nonzero().flatten()
    assert len(tied) > 1, "the box must tie between several anchors for this test to mean anything"
    assert (ours.cls_targets[0] == 2).nonzero().flatten().tolist() == [tied[0].item()]


def test_force_match_overrides_a_better_threshold_match_like_effdet(anchors):
    # Box 1 (class 4, 4x4) best-matches the 22.4 x 44.8 anchor x [16.8, 39.2] y [-10.4, 34.4]
    # (IoU 16 / 1003.5 = 0.016). Box 0 (class 1, x [22, 44] y [-10, 34]) has IoU
    # 17.2 * 44 / (968 + 1003.5 - 756.8) = 0.62 there, but its own best anchor is the next one
    # (x centre 36, IoU 0.75). The force match still gives the anchor to box 1, in both.
    boxes = torch.tensor([[[22.0, -10.0, 44.0, 34.0], [30.0, 30.0, 34.0, 34.0]]])
    classes = torch.tensor([[1, 4]])
    ours = AnchorLabeler(anchors, EFFDET_PARITY)(boxes, classes)
    assert_same(ours, effdet_targets(anchors, boxes, classes))
    forced = (ours.cls_targets[0] == 4).nonzero().flatten()
    assert len(forced) == 1
    iou = box_iou(boxes[0, :, [1, 0, 3, 2]], anchors.boxes[forced])[:, 0]
    assert iou[0] >= 0.5 > iou[1], "box 0 must have the better IoU (>= 0.5) at the forced anchor"


def test_box_overlapping_no_anchor_force_matches_anchor_zero_like_effdet(anchors):
    # Zero-area box: IoU 0 with every anchor; argmax over a row of zeros is anchor 0 (effdet quirk).
    boxes = torch.tensor([[[50.0, 50.0, 50.0, 50.0]]])
    classes = torch.tensor([[6]])
    ours = AnchorLabeler(anchors, EFFDET_PARITY)(boxes, classes)
    assert_same(ours, effdet_targets(anchors, boxes, classes))
    assert ours.cls_targets[0, 0] == 6 and ours.num_positives.item() == 1


def test_iou_band_between_thresholds_is_ignored(row_anchors):
    # Box x [8, 40], y [-12, 20] (32x32, same rows as the anchors). Shift d along x from an anchor
    # gives IoU = (32 - d) * 32 / (2 * 1024 - (32 - d) * 32) = (32 - d) / (32 + d):
    #   anchor 0 (x 4):  d = 20 -> 12 / 52 = 0.23  < 0.4          -> BACKGROUND
    #   anchor 1 (x 12): d = 12 -> 20 / 44 = 0.45  in [0.4, 0.5)  -> IGNORE
    #   anchors 2, 3:    d = 4  -> 28 / 36 = 0.78  >= 0.5         -> positive (class 5)
    boxes = torch.tensor([[[8.0, -12.0, 40.0, 20.0]]])
    out = AnchorLabeler(row_anchors)(boxes, torch.tensor([[5]]))
    assert out.cls_targets.tolist() == [[BACKGROUND, IGNORE, 5, 5]]
    assert out.num_positives.tolist() == [2.0]


def test_iou_of_point_six_is_positive_and_point_three_background(row_anchors):
    # Box x [4, 36] (centre 20): anchor 0 d = 16 -> 16 / 48 = 0.33 BACKGROUND; anchor 1 and 3
    # d = 8 -> 24 / 40 = 0.6 positive; anchor 2 d = 0 -> IoU 1.0 positive.
    boxes = torch.tensor([[[4.0, -12.0, 36.0, 20.0]]])
    out = AnchorLabeler(row_anchors)(boxes, torch.tensor([[0]]))
    assert out.cls_targets.tolist() == [[BACKGROUND, 0, 0, 0]]


def test_band_anchors_are_exactly_effdet_negatives_with_iou_at_least_neg_iou(anchors):
    boxes, classes = random_boxes(batch=3, count=10, size=128, seed=7)
    band = AnchorLabeler(anchors, LabelerConfig(pos_iou=0.5, neg_iou=0.4))(boxes, classes)
    reference = effdet_targets(anchors, boxes, classes)
    best_iou = torch.stack([box_iou(b[:, [1, 0, 3, 2]], anchors.boxes).amax(0) for b in boxes])
    positive = reference.cls_targets >= 0
    assert torch.equal(band.cls_targets[positive], reference.cls_targets[positive])
    expected = torch.where(best_iou >= 0.4, IGNORE, BACKGROUND)
    assert torch.equal(band.cls_targets[~positive], expected[~positive])
    assert (band.cls_targets == IGNORE).any() and (band.cls_targets == BACKGROUND).any()


def test_ignore_region_turns_negatives_into_ignore_but_never_a_positive(row_anchors, anchors):
    # Region x [-12, 4] y [-12, 20] holds 16 * 32 / (32 * 32) = 0.5 of anchor 0 -> IGNORE (>= 0.5),
    # and 8 * 32 / 1024 = 0.25 of anchor 1 ([-4, 28]) -> stays BACKGROUND. A zero row is padding.
    # The box is anchor 3 (IoU 1.0) and has IoU 24 / 40 = 0.6 with anchor 2.
    boxes = torch.tensor([[[12.0, -12.0, 44.0, 20.0]]])
    ignore = torch.tensor([[[-12.0, -12.0, 4.0, 20.0], [0.0, 0.0, 0.0, 0.0]]])
    out = AnchorLabeler(row_anchors)(boxes, torch.tensor([[1]]), ignore=ignore)
    assert out.cls_targets.tolist() == [[IGNORE, BACKGROUND, 1, 1]]
    # A region covering the whole image: every non-positive anchor is ignored, positives stay.
    boxes, classes = random_boxes(batch=2, count=5, size=128, seed=3)
    everything = torch.tensor([[[-200.0, -200.0, 400.0, 400.0]]]).expand(2, 1, 4)
    plain = AnchorLabeler(anchors)(boxes, classes)
    covered = AnchorLabeler(anchors)(boxes, classes, ignore=everything)
    positive = plain.cls_targets >= 0
    assert torch.equal(covered.cls_targets[positive], plain.cls_targets[positive])
    assert (covered.cls_targets[~positive] == IGNORE).all()
    assert torch.equal(covered.num_positives, plain.num_positives)


def test_box_weights_follow_the_matched_box(row_anchors):
    # Box 0 sits on anchor 0 (IoU 1), box 1 on anchor 3 (IoU 1); anchors 1, 2 have IoU
    # 24 / 40 = 0.6 with the neighbouring box: anchor 1 -> box 0, anchor 2 -> box 1.
    boxes = torch.tensor([[[-12.0, -12.0, 20.0, 20.0], [12.0, -12.0, 44.0, 20.0]]])
    weights = torch.tensor([[2.0, 0.5]])
    out = AnchorLabeler(row_anchors)(boxes, torch.tensor([[2, 3]]), box_weights=weights)
    assert out.cls_targets.tolist() == [[2, 2, 3, 3]]
    assert out.box_weights.tolist() == [[2.0, 2.0, 0.5, 0.5]]
    far = torch.tensor([[[-12.0, -12.0, 20.0, 20.0]]])  # positives: anchor 0 (IoU 1), 1 (0.6)
    out = AnchorLabeler(row_anchors)(far, torch.tensor([[2]]), box_weights=torch.tensor([[2.0]]))
    assert out.box_weights.tolist() == [[2.0, 2.0, 0.0, 0.0]]
    assert (out.box_targets[0, 2:] == 0).all()


def test_num_positives_counts_positive_anchors(anchors):
    boxes, classes = random_boxes(batch=3, count=8, size=128, seed=11)
    out = AnchorLabeler(anchors)(boxes, classes)
    assert torch.equal(out.num_positives, (out.cls_targets >= 0).sum(1).float())
    assert torch.equal(out.box_weights > 0, out.cls_targets >= 0)


def test_batch_of_one_equals_the_same_image_inside_a_batch_of_three(anchors):
    boxes, classes = random_boxes(batch=3, count=9, size=128, seed=5)
    classes[0, 6:] = PADDING
    ignore = torch.zeros(3, 2, 4)
    ignore[1, 0] = torch.tensor([10.0, 10.0, 60.0, 50.0])
    labeler = AnchorLabeler(anchors)
    weights = torch.rand(3, 9)
    batch = labeler(boxes, classes, weights, ignore)
    for i in range(3):
        single = labeler(boxes[i:i + 1], classes[i:i + 1], weights[i:i + 1], ignore[i:i + 1])
        for name in ("cls_targets", "box_targets", "box_weights", "num_positives"):
            assert torch.equal(getattr(single, name)[0], getattr(batch, name)[i]), name
    trimmed = labeler(boxes[:1, :6], classes[:1, :6], weights[:1, :6], ignore[:1, :0])
    assert torch.equal(trimmed.cls_targets[0], batch.cls_targets[0])  # padding rows change nothing


def test_block_size_does_not_change_the_targets(anchors):
    boxes, classes = random_boxes(batch=2, count=7, size=128, seed=9)
    ignore = torch.tensor([[[0.0, 0.0, 40.0, 40.0]], [[0.0, 0.0, 0.0, 0.0]]])
    whole = AnchorLabeler(anchors, LabelerConfig(block_elements=1 << 30, block_anchors=1 << 30))
    rowwise = AnchorLabeler(anchors, LabelerConfig(block_elements=1))  # one anchor row per block
    whole, rowwise = (labeler(boxes, classes, None, ignore) for labeler in (whole, rowwise))
    for name in ("cls_targets", "box_targets", "box_weights", "num_positives"):
        assert torch.equal(getattr(whole, name), getattr(rowwise, name)), name


def test_malformed_box_is_reported_with_its_batch_and_row(anchors):
    boxes = torch.tensor([[[0.0, 0.0, 10.0, 10.0], [30.0, 5.0, 20.0, 9.0]]])  # row 1: x2 < x1
    with pytest.raises(ValueError, match="batch image 0, box row 1"):
        AnchorLabeler(anchors)(boxes, torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="box row 0"):
        AnchorLabeler(anchors)(boxes[:, :1], torch.tensor([[-3]]))  # neither a column nor PADDING
    with pytest.raises(ValueError, match="ignore region row 0"):
        region = torch.tensor([[[5.0, 0.0, 1.0, 1.0]]])  # x2 < x1
        AnchorLabeler(anchors)(boxes[:, :1], torch.tensor([[0]]), ignore=region)


def test_config_rejects_inverted_thresholds():
    with pytest.raises(ValueError, match="neg_iou <= pos_iou"):
        LabelerConfig(pos_iou=0.4, neg_iou=0.5)


def test_labeler_needs_the_anchors_object_not_its_boxes(anchors):
    with pytest.raises(TypeError, match="Anchors.from_config"):
        AnchorLabeler(anchors.boxes)
