"""The detector's typed training configuration: ``TrainConfig``, its sections and ``DataConfig``.

``TrainConfig`` groups the detector's sections (model, data, split, augment, labeler, loss,
pseudo) with the engine's shared ones (``OptimConfig``, ``RunConfig``:
``taxdet.detection.engine.config_sections``). It lives below prediction, since a checkpoint's
config is read back to rebuild its model. The sections live in torch-free modules beside the
code they configure, so that this module and ``tools/train.py --help`` import no torch, effdet
or albumentations.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from taxdet.core.config_field import config_field
from taxdet.core.errors import ConfigError
from taxdet.datasets.augment_config import AugmentConfig
from taxdet.datasets.split import SplitConfig
from taxdet.detection.anchors.labeler_config import LabelerConfig
from taxdet.detection.engine.config_sections import (
    OptimConfig,
    RunConfig,
    Sections,
    check_ranges,
)
from taxdet.detection.model.model_config import ModelConfig
from taxdet.losses.loss_config import DetectionLossConfig, PseudoLabelConfig


@dataclass
class DataConfig:
    taxonomies: list[str] = config_field(
        ["taxonomies/driving"], "taxonomy YAML files or folders: a super-taxonomy and the "
        "customer taxonomies whose datasets are merged and trained on (with --data: the "
        "taxonomies that super.json was merged with)")
    super_json: str | None = config_field(
        None, "a super-dataset prepared by tools/merge_datasets.py (super.json) to train on "
        "instead of merging the taxonomies' data: entries at every start; checked against "
        "--taxonomies by hash; its images are decoded once at the start, as the merge does (a "
        "truncated or unreadable one is an error naming it)")
    super_taxonomy: str | None = config_field(
        None, "name of the super-taxonomy to train; needed when the taxonomy files hold several")
    workers: int = config_field(
        2, "data-loader processes per training process; they decode, augment and (with "
        "label_in_workers) label the images of each batch of --batch-size; 0 loads in the "
        "training process")
    label_in_workers: bool = config_field(
        True, "label anchors in the loader workers, one image at a time on the CPU (false: on "
        "the training device, per batch)")
    allow_unmapped: bool = config_field(
        False, "drop (and count) annotations whose category the taxonomy does not name, "
        "instead of failing")

    def __post_init__(self) -> None:
        check_ranges({"workers": (self.workers, 0, None)})




@dataclass
class TrainConfig(Sections):
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    labeler: LabelerConfig = field(default_factory=LabelerConfig)
    loss: DetectionLossConfig = field(default_factory=DetectionLossConfig)
    pseudo: PseudoLabelConfig = field(default_factory=PseudoLabelConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        # One input size: the augmentation resizes and pads to the model's size.
        default = AugmentConfig().image_size
        if self.augment.image_size not in (default, self.model.image_size):
            raise ConfigError(f"augment.image_size {self.augment.image_size} differs from "
                              f"model.image_size {self.model.image_size}; "
                              "set model.image_size only")
        self.augment = dataclasses.replace(self.augment, image_size=self.model.image_size)
        if self.pseudo.enabled and (self.optim.ema_decay == 0 or self.model.heads != "shared"
                                    or not self.run.taxonomy_mask):
            raise ConfigError("pseudo.enabled needs the EMA teacher (optim.ema_decay > 0), "
                              "shared heads (model.heads: shared) and taxonomy masking "
                              "(run.taxonomy_mask: true)")
