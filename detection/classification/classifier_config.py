"""Typed configuration of an image-classifier run, filled from defaults < YAML file < flags.

The classifier trains on the engine (``taxdet.detection.engine``): the same ``OptimConfig``
(optimizer, warm-up + cosine schedule, EMA, step budget), ``RunConfig`` (run folder, seed,
validation, resume, ``taxonomy_mask``) and command line (``CLASSIFIER``, a
``taxdet.detection.engine.command_line.CommandLine``) as the detector, and its ``SplitConfig``.
The sections here say what is classifier-specific: the timm model, the classification data, the
augmentation and the loss.
Torch-free, so ``tools/train_classifier.py --help`` stays fast.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from taxdet.core.config_field import config_field
from taxdet.core.errors import ConfigError
from taxdet.datasets.augment_config import ClassifierAugmentConfig
from taxdet.datasets.split import SplitConfig
from taxdet.detection.engine.command_line import CommandLine
from taxdet.detection.engine.config_sections import OptimConfig, RunConfig, Sections

LossName = Literal["softmax", "bce", "focal", "hierarchical"]
SIGMOID_LOSSES = ("bce", "focal", "hierarchical")  # one probability per class, not a softmax


@dataclass
class ClassifierModelConfig:
    name: str = config_field(
        "resnet18", "timm model name (timm.create_model), e.g. resnet18, efficientnet_b0, "
        "resnet10t, mobilenetv3_small_050; built with pretrained=False: nothing is downloaded")
    image_size: int = config_field(64, "input side in pixels: every image is resized to a "
                                   "square of this size")
    weights: str | None = config_field(
        None, "a local weights file to start from: a timm / torchvision state dict or a "
        "classifier checkpoint, read with weights_only=True; a classifier layer of another "
        "shape keeps its fresh initialisation (none: from scratch)")
    drop_rate: float = config_field(0.0, "dropout before the classifier layer, in [0, 1)")

    def __post_init__(self) -> None:
        if self.image_size < 16 or not 0.0 <= self.drop_rate < 1.0:
            raise ConfigError(f"image_size must be >= 16 and drop_rate in [0, 1), got "
                              f"{self.image_size}, {self.drop_rate}")


@dataclass
class ClassifierDataConfig:
    taxonomies: list[str] = config_field(
        ["taxonomies/driving"], "taxonomy YAML files or folders: a super-taxonomy and the "
        "customer taxonomies whose classification datasets (data: - classification: DIR or - "
        "classification_csv: FILE) are concatenated and trained on")
    super_taxonomy: str | None = config_field(
        None, "name of the super-taxonomy to train; needed when the taxonomy files hold several")
    workers: int = config_field(0, "data-loader processes (0: load in the training process)")
    allow_unmapped: bool = config_field(
        False, "drop (and count) images whose label the taxonomy does not name, instead of "
        "failing")

    def __post_init__(self) -> None:
        if self.workers < 0:
            raise ConfigError(f"workers must be >= 0, got {self.workers}")


@dataclass
class ClassifierLossConfig:
    name: LossName = config_field(
        "softmax", "softmax: cross-entropy over each image's labeled classes that exclude each "
        "other (not the target's ancestors or descendants); bce / focal: sigmoid per class on "
        "the labeled columns, targets with their ancestors; hierarchical: bce that also trains "
        "the certain cells of the tree (losses.certain_cells 'all')")
    focal_alpha: float = config_field(0.25, "focal loss: weight of the positives, in [0, 1]")
    focal_gamma: float = config_field(2.0, "focal loss: focusing exponent, >= 0")

    def __post_init__(self) -> None:
        if not 0.0 <= self.focal_alpha <= 1.0 or self.focal_gamma < 0:
            raise ConfigError(f"focal_alpha must be in [0, 1] and focal_gamma >= 0, got "
                              f"{self.focal_alpha}, {self.focal_gamma}")

    @property
    def sigmoid(self) -> bool:
        """True when the loss scores each class by its own sigmoid (not one softmax)."""
        return self.name in SIGMOID_LOSSES


@dataclass
class ClassifierConfig(Sections):
    model: ClassifierModelConfig = field(default_factory=ClassifierModelConfig)
    data: ClassifierDataConfig = field(default_factory=ClassifierDataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    augment: ClassifierAugmentConfig = field(default_factory=ClassifierAugmentConfig)
    loss: ClassifierLossConfig = field(default_factory=ClassifierLossConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)


CLASSIFIER = CommandLine(
    ClassifierConfig,
    sections={
        "data": "which taxonomies' classification datasets are concatenated, and how they load",
        "model": "which timm classifier, at which input size, from which local weights",
        "loss": "the masked loss: softmax, bce, focal or hierarchical",
        "optim": "optimizer, learning-rate schedule and how long to train (the detector's)",
        "run": "output folder, device, seed, validation, logging and resume (the detector's)",
        "split": "the stable train / val split: each image's side depends only on its own key",
        "augment": "training augmentation: random resized crop and horizontal flip",
    },
    aliases={"taxonomies": "data.taxonomies", "output": "run.output", "model": "model.name",
             "image-size": "model.image_size", "batch-size": "optim.batch_size",
             "epochs": "optim.epochs", "steps": "optim.steps", "lr": "optim.lr",
             "device": "run.device", "seed": "run.seed", "resume": "run.resume",
             "workers": "data.workers", "val-every": "run.val_every", "loss": "loss.name",
             "weights": "model.weights", "init-checkpoint": "run.init_checkpoint",
             "super-taxonomy": "data.super_taxonomy"},
    metavars={"data.taxonomies": "PATH", "data.super_taxonomy": "NAME", "model.name": "NAME",
              "model.weights": "PATH", "run.output": "DIR", "run.resume": "CKPT",
              "run.init_checkpoint": "CKPT", "augment.crop_scale": "LO,HI",
              "optim.optimizer": "{adamw,sgd}"},
    nargs=frozenset({"data.taxonomies"}))
