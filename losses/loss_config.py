"""``DetectionLossConfig``: the detection loss's hyper-parameters (torch-free, so that
``tools/train.py --help`` lists them without importing torch; the loss itself is
``taxdet.losses.detection_masking``)."""

from __future__ import annotations

from dataclasses import dataclass

from taxdet.core.config_field import config_field
from taxdet.core.errors import ConfigError

CERTAIN_CELLS = ("none", "positives", "rows", "all")   # cumulative rules, losses.certain_cells
COARSE_CHILDREN = ("none", "noisy_or")   # taxdet.losses.coarse_children (that module needs torch)


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
    certain_cells: str = config_field(
        "all", "which cells beyond the labeled columns train (docs/losses.md): none = strict "
        "masking; positives = + ancestors of a box's class; rows = + off-path negatives at a "
        "box's anchors; all = + negatives inherited down the tree at background anchors")
    coarse_children: str = config_field(
        "noisy_or", "at a box labeled only with an exhaustive parent, train its masked "
        "children as a set: noisy_or = one focal positive of P = 1 - prod(1 - p_child) "
        "(taxdet.losses.coarse_children); none = off")
    coarse_children_weight: float = config_field(1.0, "weight of the coarse_children term "
                                                 "against the class loss, > 0")

    def __post_init__(self) -> None:
        problems = [msg for bad, msg in [
            (not 0.0 <= self.alpha <= 1.0, f"alpha must be in [0, 1], got {self.alpha}"),
            (self.gamma < 0.0, f"gamma must be >= 0, got {self.gamma}"),
            (self.delta <= 0.0, f"delta must be > 0, got {self.delta}"),
            (not 0.0 <= self.label_smoothing < 1.0,
             f"label_smoothing must be in [0, 1), got {self.label_smoothing}"),
            (self.certain_cells not in CERTAIN_CELLS,
             f"certain_cells must be one of {', '.join(CERTAIN_CELLS)}, got "
             f"{self.certain_cells!r}"),
            (self.coarse_children not in COARSE_CHILDREN,
             f"coarse_children must be one of {', '.join(COARSE_CHILDREN)}, got "
             f"{self.coarse_children!r}"),
            (self.coarse_children_weight <= 0.0,
             f"coarse_children_weight must be > 0, got {self.coarse_children_weight}"),
            (self.legacy_focal and self.label_smoothing > 0.0,
             "legacy_focal has no label smoothing (effdet would ignore it silently); "
             "use legacy_focal=False or label_smoothing=0"),
        ] if bad]
        if problems:
            raise ConfigError("DetectionLossConfig: " + "; ".join(problems))


@dataclass(frozen=True)
class PseudoLabelConfig:
    """Pseudo-labels from the EMA teacher in masked cells (``taxdet.losses.pseudo_labels``)."""

    enabled: bool = config_field(False, "fill masked cells with the EMA teacher's confident "
                                 "scores (needs optim.ema_decay > 0)")
    start_step: int = config_field(100, "first step with pseudo-labels (the teacher warms up "
                                   "before), >= 0")
    pos_threshold: float = config_field(0.5, "teacher score at or above which a masked cell "
                                        "is a positive, in (0, 1]")
    neg_threshold: float = config_field(0.05, "teacher score at or below which a masked cell "
                                        "is a negative, in [0, pos_threshold)")
    weight: float = config_field(0.5, "loss weight of a pseudo-labeled cell, in (0, 1]")
    soft: bool = config_field(False, "scale each pseudo-labeled cell's weight by the teacher's "
                              "confidence in it (p for a positive, 1 - p for a negative)")
    start_ap: float = config_field(0.0, "also wait for a validation AP >= this before the "
                                   "first pseudo-label (0: start_step alone), in [0, 1)")
    class_precision: float = config_field(
        0.0, "0: one pos_threshold for every class; else each class's positive threshold is "
        "the lowest teacher score reaching this precision on the validation images of the "
        "customers that label the class, refitted at every validation (a class without such a "
        "fit gets no pseudo-positive), in [0, 1)")

    def __post_init__(self) -> None:
        problems = [msg for bad, msg in [
            (self.start_step < 0, f"start_step must be >= 0, got {self.start_step}"),
            (not 0.0 < self.pos_threshold <= 1.0,
             f"pos_threshold must be in (0, 1], got {self.pos_threshold}"),
            (not 0.0 <= self.neg_threshold < self.pos_threshold,
             f"neg_threshold must be in [0, pos_threshold), got {self.neg_threshold}"),
            (not 0.0 < self.weight <= 1.0, f"weight must be in (0, 1], got {self.weight}"),
            (not 0.0 <= self.start_ap < 1.0, f"start_ap must be in [0, 1), got {self.start_ap}"),
            (not 0.0 <= self.class_precision < 1.0,
             f"class_precision must be in [0, 1), got {self.class_precision}"),
        ] if bad]
        if problems:
            raise ConfigError("PseudoLabelConfig: " + "; ".join(problems))
