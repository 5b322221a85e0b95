"""Losses with Taxonomy Loss Masking: EfficientDet detection loss and classification variants.

Special target values (BACKGROUND, IGNORE, PADDING) live in ``taxdet.core.targets``.

The names below import their module (and torch) on first use, so that
``from losses import DetectionLossConfig`` (``taxdet.losses.loss_config``, read by
``tools/train.py --help``) imports no torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from taxdet.core.targets import BACKGROUND, IGNORE, PADDING
from taxdet.losses.loss_config import DetectionLossConfig

_LAZY = {
    "taxdet.losses.classification_loss": (
        "HierarchicalBCELoss", "MaskedBCELoss", "MaskedFocalLoss", "MaskedSoftmaxCrossEntropyLoss",
        "hierarchical_bce", "masked_bce", "masked_focal", "masked_softmax_cross_entropy"),
    "taxdet.losses.detection_masking": ("DetectionLoss", "LossDict", "detection_loss",
                                        "levels_to_B_A_K", "masked_detection_loss"),
    "taxdet.losses.focal": ("focal_loss", "focal_loss_legacy", "focal_value_and_grad"),
    "taxdet.losses.ancestor_targets": ("expand_targets",),
}
_MODULE_OF = {name: module for module, names in _LAZY.items() for name in names}

__all__ = [
    "BACKGROUND", "IGNORE", "PADDING",
    "DetectionLoss", "DetectionLossConfig", "LossDict", "detection_loss", "levels_to_B_A_K",
    "masked_detection_loss",
    "HierarchicalBCELoss", "MaskedBCELoss", "MaskedFocalLoss", "MaskedSoftmaxCrossEntropyLoss",
    "hierarchical_bce", "masked_bce", "masked_focal", "masked_softmax_cross_entropy",
    "focal_loss", "focal_loss_legacy", "focal_value_and_grad", "expand_targets",
]


def __getattr__(name: str) -> Any:
    """``losses.<name>`` for the names above that import torch: imported on first use."""
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(_MODULE_OF[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_MODULE_OF))
