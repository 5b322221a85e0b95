"""``ModelConfig``: which EfficientDet, at which input size, with which anchors (torch- and
effdet-free, so that ``tools/train.py --help`` lists it without importing either; the network
is built by ``taxdet.detection.model.build``).

The anchor fields default to None, "the effdet model's own value" (``anchor_scale`` is 4.0
for efficientdet_d0 but 3.0 for tf_efficientdet_lite0 and 5.0 for tf_efficientdet_d7), so a
config or checkpoint that does not set them keeps the anchors it was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taxdet.core.config_field import config_field
from taxdet.core.errors import ConfigError

Pair = tuple[float, float]


@dataclass
class ModelConfig:
    """Which EfficientDet, at which input size, from which local weights, with which anchors."""

    name: str = config_field("efficientdet_d0", "effdet model name: efficientdet_d0 "
                             "(smallest) ... efficientdet_d7, or another of effdet's")
    image_size: int = config_field(512, "square input side in pixels, a multiple of 128 "
                                   "(2**max_level); all images are resized and padded to it, "
                                   "for training and validation (augment.image_size follows it)")
    pretrained_backbone: str | None = config_field(
        None, "local timm state dict for the backbone, else random initialisation; nothing is "
        "ever downloaded")
    heads: str = config_field("shared", "shared: one class / box head pair; per-taxonomy: one "
                              "pair per taxonomy")
    anchor_scale: float | None = config_field(
        None, "anchor size: an anchor's base side is anchor_scale x its level's stride (8 ... "
        "128 px); none: the model's own (4.0 for efficientdet_d0, 3.0 for tf_efficientdet_lite0)")
    aspect_ratios: list[Pair] | None = config_field(
        None, "anchor shapes, [[x, y], ...]: each pair multiplies the base side for the width "
        "(x) and the height (y); none: the model's own ([[1.0, 1.0], [1.4, 0.7], [0.7, 1.4]] "
        "for efficientdet_d0)")
    num_scales: int | None = config_field(
        None, "anchor sizes per level and shape: base side x 2**(i / num_scales), i = 0 ... "
        "num_scales - 1; the head predicts num_scales x len(aspect_ratios) anchors per "
        "location; none: the model's own (3)")

    def __post_init__(self) -> None:
        if self.anchor_scale is not None and not self.anchor_scale > 0:
            raise ConfigError(f"anchor_scale must be > 0, got {self.anchor_scale}")
        if self.num_scales is not None and self.num_scales < 1:
            raise ConfigError(f"num_scales must be >= 1, got {self.num_scales}")
        if self.aspect_ratios is not None:
            self.aspect_ratios = _aspect_pairs(self.aspect_ratios)

    def anchor_overrides(self) -> dict[str, Any]:
        """The anchor settings that replace the effdet model's own: those that are not None,
        under effdet's config keys (``aspect_ratios`` as a list of (x, y) tuples)."""
        values = {"anchor_scale": self.anchor_scale, "aspect_ratios": self.aspect_ratios,
                  "num_scales": self.num_scales}
        return {key: value for key, value in values.items() if value is not None}


def _aspect_pairs(ratios: Any) -> list[Pair]:
    """``ratios`` as a non-empty list of positive (x, y) float tuples; ``ConfigError`` else."""
    try:
        pairs = [(float(x), float(y)) for x, y in ratios]
    except (TypeError, ValueError):
        raise ConfigError(f"aspect_ratios must be a list of [x, y] pairs, got {ratios!r}") from None
    if not pairs or not all(x > 0 and y > 0 for x, y in pairs):
        raise ConfigError(f"aspect_ratios must be a non-empty list of positive [x, y] pairs, "
                          f"got {ratios!r}")
    return pairs
