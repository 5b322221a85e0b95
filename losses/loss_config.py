"""``DetectionLossConfig``: the detection loss's hyper-parameters (torch-free, so that
``tools/train.py --help`` lists them without importing torch; the loss itself is
``losses.detection``)."""

from __future__ import annotations

from dataclasses import dataclass

from datasets.config_field import config_field
from supertax.errors import ConfigError


@dataclass(frozen=True)
class DetectionLossConfig:
    """Focal + Huber hyper-parameters; the defaults are effdet's.

    ``legacy_focal``: effdet's older focal implementation: the same loss value and gradient,
    but it cannot smooth labels. Kept for signature parity with ``effdet.loss.loss_fn``; here
    it only turns label smoothing off (and rejects a non-zero ``label_smoothing``).
    """

    alpha: float = config_field(0.25, "focal loss: weight of the positives, in [0, 1]")
    gamma: float = config_field(1.5, "focal loss: focusing exponent, >= 0")
    delta: float = config_field(0.1, "Huber box loss: where it turns from quadratic to "
                                "linear, > 0")
    box_loss_weight: float = config_field(50.0, "weight of the box loss against the class loss")
    label_smoothing: float = config_field(0.0, "class label smoothing, in [0, 1)")
    legacy_focal: bool = config_field(False, "effdet's older focal implementation (same loss "
                                      "and gradient, no label smoothing)")

    def __post_init__(self) -> None:
        problems = [msg for bad, msg in [
            (not 0.0 <= self.alpha <= 1.0, f"alpha must be in [0, 1], got {self.alpha}"),
            (self.gamma < 0.0, f"gamma must be >= 0, got {self.gamma}"),
            (self.delta <= 0.0, f"delta must be > 0, got {self.delta}"),
            (not 0.0 <= self.label_smoothing < 1.0,
             f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.legacy_focal and self.label_smoothing > 0.0,
             "legacy_focal has no label smoothing (effdet would ignore it silently); "
             "use legacy_focal=False or label_smoothing=0"),
        ] if bad]
        if problems:
            raise ConfigError("DetectionLossConfig: " + "; ".join(problems))
