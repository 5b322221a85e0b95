"""Losses with Taxonomy Loss Masking: EfficientDet detection loss and classification variants.

Special target values (BACKGROUND, IGNORE, PADDING) live in ``losses.targets``.
"""

from losses.classification import (HierarchicalBCELoss, MaskedBCELoss, MaskedFocalLoss,
                                   MaskedSoftmaxCrossEntropyLoss, hierarchical_bce, masked_bce,
                                   masked_focal, masked_softmax_cross_entropy)
from losses.detection import (DetectionLoss, DetectionLossConfig, LossDict, detection_loss,
                              levels_to_B_A_K, masked_detection_loss)
from losses.focal import focal_loss, focal_loss_legacy, focal_value_and_grad
from losses.hierarchy import expand_targets
from losses.targets import BACKGROUND, IGNORE, PADDING

__all__ = [
    "BACKGROUND", "IGNORE", "PADDING",
    "DetectionLoss", "DetectionLossConfig", "LossDict", "detection_loss", "levels_to_B_A_K",
    "masked_detection_loss",
    "HierarchicalBCELoss", "MaskedBCELoss", "MaskedFocalLoss", "MaskedSoftmaxCrossEntropyLoss",
    "hierarchical_bce", "masked_bce", "masked_focal", "masked_softmax_cross_entropy",
    "focal_loss", "focal_loss_legacy", "focal_value_and_grad", "expand_targets",
]
