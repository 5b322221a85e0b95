"""``AugmentConfig``: the training augmentation's settings (torch- and albumentations-free,
so that ``tools/train.py --help`` lists them without importing either; the pipeline itself
is ``taxdet.datasets.transforms``)."""

from __future__ import annotations

from dataclasses import dataclass

from taxdet.core.config_field import config_field
from taxdet.core.errors import ConfigError


@dataclass(frozen=True)
class AugmentConfig:
    """Augmentation settings; ``image_size`` is the square model input side in pixels."""

    image_size: int = config_field(256, "leave unset: it follows --model.image_size (another "
                                   "value is an error)")
    scale_jitter: tuple[float, float] = config_field(
        (0.75, 1.25), "[lo, hi]: random factor on the fit-to-size scale")
    hflip_p: float = config_field(0.5, "probability of a horizontal flip")
    brightness: float = config_field(0.25, "colour jitter: largest relative brightness change")
    contrast: float = config_field(0.25, "colour jitter: largest relative contrast change")
    saturation: float = config_field(0.25, "colour jitter: largest relative saturation change")
    hue: float = config_field(0.03, "colour jitter: largest hue shift (fraction of the hue "
                              "circle, <= 0.5)")
    color_p: float = config_field(0.8, "probability of the colour jitter")
    min_visibility: float = config_field(0.3, "fraction of a box's area that must stay in the "
                                         "image to keep it")
    min_area: float = config_field(4.0, "model-input pixels^2 a kept box needs")

    def __post_init__(self) -> None:
        lo, hi = self.scale_jitter
        if not 0 < lo <= hi:
            raise ConfigError(f"scale_jitter must satisfy 0 < lo <= hi, got {self.scale_jitter}")
        if self.image_size <= 0:
            raise ConfigError(f"image_size must be positive, got {self.image_size}")


@dataclass(frozen=True)
class ClassifierAugmentConfig:
    """The image classifier's augmentation (``taxdet.datasets.classification_torch.augment``)."""

    hflip: float = config_field(0.5, "probability of a horizontal flip, in [0, 1]")
    crop_scale: tuple[float, float] = config_field(
        (0.6, 1.0), "random resized crop: the share of the image area kept is drawn in "
        "[LO, HI] (aspect ratio in [3/4, 4/3]); [1, 1]: no crop")

    def __post_init__(self) -> None:
        lo, hi = self.crop_scale
        if not 0.0 <= self.hflip <= 1.0 or not 0.0 < lo <= hi <= 1.0:
            raise ConfigError(f"hflip must be in [0, 1] and crop_scale 0 < LO <= HI <= 1, got "
                              f"{self.hflip}, {list(self.crop_scale)}")
