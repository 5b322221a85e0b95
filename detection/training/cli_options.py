"""The detector's training command line (``tools/train.py``): its short aliases, ``--help``
groups and metavars (``DETECTION``), and the engine's command-line functions
(``taxdet.detection.engine.command_line``) with ``DETECTION`` as their default. Building the
parser imports no torch, effdet or albumentations (``tools/train.py --help`` stays fast).
"""

from __future__ import annotations

import argparse
from typing import Any

from taxdet.detection.engine import command_line
from taxdet.detection.engine.command_line import (  # noqa: F401  (the detector's defaults)
    CommandLine,
    Option,
    merge_trees,
    parse_args,
)
from taxdet.detection.model.detector_config import TrainConfig

# Short flags for what users type most; everything else is --section.field.
ALIASES = {
    "taxonomies": "data.taxonomies", "output": "run.output", "model": "model.name",
    "image-size": "model.image_size", "batch-size": "optim.batch_size", "epochs": "optim.epochs",
    "steps": "optim.steps", "lr": "optim.lr", "device": "run.device", "seed": "run.seed",
    "resume": "run.resume", "workers": "data.workers", "val-every": "run.val_every",
    "init-checkpoint": "run.init_checkpoint", "pretrained-backbone": "model.pretrained_backbone",
    "super-taxonomy": "data.super_taxonomy", "data": "data.super_json",
}

# --help groups, in this order: one line per section.
SECTIONS = {
    "data": "where the images and labels come from and how they are loaded",
    "model": "which EfficientDet, at which input size, from which weights",
    "optim": "optimizer, learning-rate schedule and how long to train",
    "run": "output folder, device, seed, validation and logging",
    "split": "the stable train / val split: each image's side depends only on its own key",
    "augment": "training augmentation; its image size follows --model.image_size",
    "labeler": "anchor labeling: which anchors are positive, negative (background) or ignored",
    "loss": "focal class loss + Huber box loss (the defaults are effdet's) and which "
            "unlabeled cells are certain",
    "pseudo": "pseudo-labels: the EMA teacher's confident scores fill cells no label decides",
}

_SHOWN_DEFAULT = {"augment.image_size": "--model.image_size"}
_NARGS = {"data.taxonomies"}  # flags taking several words: --taxonomies a b
_METAVARS = {"data.super_taxonomy": "NAME", "data.super_json": "JSON", "model.name": "NAME",
             "run.output": "DIR", "run.resume": "CKPT", "run.init_checkpoint": "CKPT",
             "model.pretrained_backbone": "PATH", "augment.scale_jitter": "LO,HI",
             "model.aspect_ratios": "PAIRS", "model.heads": "{shared,per-taxonomy}",
             "optim.optimizer": "{adamw,sgd}",
             "loss.certain_cells": "{none,positives,rows,all}", "data.taxonomies": "PATH"}



DETECTION = CommandLine(TrainConfig, SECTIONS, ALIASES, _METAVARS, frozenset(_NARGS),
                        _SHOWN_DEFAULT)


def options(cli: CommandLine = DETECTION) -> list[Option]:
    """Every config field of ``cli`` (default: the detector's), section by section."""
    return command_line.options(cli)


def add_arguments(parser: argparse.ArgumentParser, cli: CommandLine = DETECTION) -> None:
    """``command_line.add_arguments`` for ``cli`` (default: the detector's)."""
    command_line.add_arguments(parser, cli)


def training_parser(prog: str, description: str, usage: str,
                    cli: CommandLine = DETECTION) -> argparse.ArgumentParser:
    """``command_line.training_parser`` for ``cli`` (default: the detector's)."""
    return command_line.training_parser(prog, description, usage, cli)


def resolve(args: argparse.Namespace, cli: CommandLine = DETECTION) -> Any:
    """``command_line.resolve`` for ``cli`` (default: the detector's ``TrainConfig``)."""
    return command_line.resolve(args, cli)
