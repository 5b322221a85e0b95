"""Drop-in parity with effdet.loss.loss_fn, the flattening order, and the module wrapper."""

import pytest
import torch
from effdet.loss import loss_fn

from taxdet.losses import (
    DetectionLoss,
    DetectionLossConfig,
    detection_loss,
    levels_to_B_A_K,
    masked_detection_loss,
)

ARGS = dict(alpha=0.25, gamma=1.5, delta=0.1, box_loss_weight=50.0)


def _grads(out, batch):
    return torch.autograd.grad(out[0], batch.cls_outputs + batch.box_outputs)


@pytest.mark.parametrize("legacy, smoothing", [(False, 0.0), (False, 0.1), (True, 0.0)],
                         ids=["new", "new-smoothing", "legacy"])
def test_matches_effdet_loss_without_masks(batch, legacy, smoothing):
    inputs = (batch.cls_outputs, batch.box_outputs, batch.cls_targets, batch.box_targets,
              batch.num_positives, batch.num_classes)
    ref = loss_fn(*inputs, **ARGS, label_smoothing=smoothing, legacy_focal=legacy)
    ours = detection_loss(*inputs, **ARGS, label_smoothing=smoothing, legacy_focal=legacy)
    assert ref[1].item() > 1.0 and ref[2].item() > 0.0     # a real, non-trivial loss
    for r, o in zip(ref, ours):
        torch.testing.assert_close(o, r, rtol=1e-6, atol=1e-6)
    for r, o in zip(_grads(ref, batch), _grads(ours, batch)):
        torch.testing.assert_close(o, r, rtol=1e-5, atol=1e-8)


def test_batch_mixes_background_ignore_and_positives(batch):
    cls_targets, _ = batch.flat_targets()
    counts = [int((cls_targets == v).sum()) for v in (-2, -1)]
    assert min(counts) > 0 and int((cls_targets >= 0).sum()) == int(batch.num_positives.sum())


def test_levels_to_B_A_K_uses_effdet_anchor_order():
    # Level l of shape [B, nA*C, H, W]: flat anchor = offset_l + (h * W + w) * nA + anchor.
    B, nA, C, sizes = 2, 3, 5, [(4, 6), (2, 3)]
    levels = [torch.randn(B, nA * C, h, w) for h, w in sizes]
    flat = levels_to_B_A_K(levels, C)
    assert flat.shape == (B, nA * (24 + 6), C)
    # level 1, h=1, w=2, anchor 2: offset 4*6*3 = 72, + (1*3 + 2)*3 + 2 = 17 -> anchor 89
    torch.testing.assert_close(flat[1, 89], levels[1][1, 2 * C:3 * C, 1, 2])
    # effdet's view: permute(0, 2, 3, 1) then [B, H, W, nA, C]
    ref = levels[0].permute(0, 2, 3, 1).reshape(B, 4, 6, nA, C)
    torch.testing.assert_close(flat[:, :72].reshape(B, 4, 6, nA, C), ref)


def test_levels_to_B_A_K_rejects_bad_channel_count():
    with pytest.raises(ValueError, match=r"level 0: expected \[B, nA\*4, H, W\]"):
        levels_to_B_A_K([torch.zeros(1, 10, 2, 2)], 4)


def test_module_returns_named_losses_equal_to_function(batch):
    cls_logits, box_pred = batch.flat_outputs()
    cls_targets, box_targets = batch.flat_targets()
    args = (cls_logits, box_pred, cls_targets, box_targets, batch.num_positives)
    out = DetectionLoss(DetectionLossConfig())(*args)
    assert set(out) == {"loss", "class_loss", "box_loss"}
    ref = masked_detection_loss(*args, DetectionLossConfig())
    for k in out:
        assert out[k].item() == ref[k].item()
    # total = class + 50 * box
    expected = out["class_loss"].item() + 50 * out["box_loss"].item()
    assert out["loss"].item() == pytest.approx(expected)
