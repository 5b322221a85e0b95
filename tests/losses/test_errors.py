"""Bad inputs give clear errors naming the argument, position and value."""

import pytest
import torch

from taxdet.losses import DetectionLossConfig, detection_loss, expand_targets, masked_detection_loss
from taxdet.losses.ancestor_targets import as_ancestors


def _inputs(B=1, A=4, K=3):
    return (torch.zeros(B, A, K), torch.zeros(B, A, 4), torch.full((B, A), -1),
            torch.zeros(B, A, 4), torch.zeros(B))


def test_out_of_range_class_target_names_its_position():
    cls_logits, box_pred, cls_targets, box_targets, num_pos = _inputs()
    cls_targets[0, 2] = 3
    with pytest.raises(ValueError, match=r"cls_targets\[0, 2\] = 3: expected a column in \[0, 3\)"):
        masked_detection_loss(cls_logits, box_pred, cls_targets, box_targets, num_pos,
                              DetectionLossConfig())


def test_shape_mismatch_names_the_argument():
    cls_logits, box_pred, cls_targets, box_targets, num_pos = _inputs()
    with pytest.raises(ValueError, match=r"class_mask: expected shape \[1, 3\]"):
        masked_detection_loss(cls_logits, box_pred, cls_targets, box_targets, num_pos,
                              DetectionLossConfig(), class_mask=torch.ones(1, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"box_weights: expected shape \[1, 4\]"):
        masked_detection_loss(cls_logits, box_pred, cls_targets, box_targets, num_pos,
                              DetectionLossConfig(), box_weights=torch.ones(4))


def test_config_rejects_bad_values_and_legacy_with_smoothing():
    with pytest.raises(ValueError, match=r"alpha must be in \[0, 1\], got 2"):
        DetectionLossConfig(alpha=2)
    with pytest.raises(ValueError, match="legacy_focal has no label smoothing"):
        DetectionLossConfig(legacy_focal=True, label_smoothing=0.1)
    with pytest.raises(ValueError, match="legacy_focal has no label smoothing"):
        detection_loss([], [], [], [], torch.zeros(1), 3, 0.25, 1.5, 0.1, 50.0, 0.1, True)


def test_ancestor_matrix_must_be_square_with_true_diagonal():
    with pytest.raises(ValueError, match=r"expected shape \[K, K\] = \[3, 3\], got \[3, 2\]"):
        as_ancestors(torch.ones(3, 2, dtype=torch.bool), 3)
    with pytest.raises(ValueError, match=r"diagonal must be True .* columns \[1\]"):
        as_ancestors(torch.tensor([[1, 0, 0], [0, 0, 0], [0, 0, 1]]), 3)


def test_expand_targets_gives_zero_rows_for_background_and_ignore():
    anc = torch.tensor([[1, 0, 0], [1, 1, 0], [0, 0, 1]], dtype=torch.bool)
    got = expand_targets(torch.tensor([1, -1, -2, 2]), 3, anc)
    # class 1 -> itself and its ancestor 0; BACKGROUND / IGNORE -> no positive column
    assert got.tolist() == [[1, 1, 0], [0, 0, 0], [0, 0, 0], [0, 0, 1]]
    with pytest.raises(ValueError, match="class column 3 out of range for K = 3"):
        expand_targets(torch.tensor([3]), 3, anc)


def test_second_backward_through_one_forward_is_refused():
    cls_logits, box_pred, cls_targets, box_targets, num_pos = _inputs()
    cls_logits.requires_grad_()
    loss = masked_detection_loss(cls_logits, box_pred, cls_targets, box_targets, num_pos,
                                 DetectionLossConfig())["loss"]
    loss.backward(retain_graph=True)
    with pytest.raises(RuntimeError, match="backward called twice"):
        loss.backward()
