"""Load a classifier checkpoint and score it on classification data (what
``tools/evaluate_classifier.py`` runs).

    model, taxset, cfg = load_classifier("runs/cls/last.pt")
    result = evaluate_checkpoint("runs/cls/last.pt", ["taxonomies/driving"], split="val")
    print(result.format_table())

The checkpoint is read by ``taxdet.detection.engine.weights_file`` (``weights_only=True``, digest
checked) and must be a classifier's (``checkpoint["task"] == "classification"``). The data is
read from the taxonomies given (their ``data:`` classification entries) and split as the run
split it (the checkpoint's ``split`` config): ``split="val"`` scores the images the run held
out. Only the checkpoint's taxonomies are scored (a task-centric classifier is scored on its
own customer); the OOD set is every ``maps_to: null`` image of all the taxonomies read, plus any
``ood_folders`` (their unreadable images skipped and counted in one warning).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import numpy as np
import torch

import taxdet.supertax as supertax
from taxdet.core.errors import ConfigError, InputNotFoundError
from taxdet.datasets.classification_data import (
    IMAGE_SUFFIXES,
    OOD,
    ClassificationSample,
    load_classification,
)
from taxdet.datasets.classification_torch import ClassificationDataset
from taxdet.datasets.split import assign_split
from taxdet.detection.classification.classifier_config import ClassifierConfig
from taxdet.detection.classification.classifier_evaluation import (
    ClassifierEvaluation,
    evaluate_logits,
    predict_logits,
)
from taxdet.detection.classification.classifier_loaders import eval_loader
from taxdet.detection.classification.classifier_model import create_classifier
from taxdet.detection.classification.classifier_trainer import TASK
from taxdet.detection.engine.checkpoint import CheckpointError
from taxdet.detection.engine.model_loading import ModelSpec, load_model
from taxdet.detection.prediction.image_inputs import check_files, warn_skipped

SPLITS = ("val", "train", "all")
log = logging.getLogger(__name__)


def classifier_description(cfg: ClassifierConfig, taxset: supertax.TaxonomySet) -> str:
    return f"{cfg.model.name} with {taxset.num_classes} classes"


def build_classifier(cfg: ClassifierConfig, taxset: supertax.TaxonomySet) -> torch.nn.Module:
    """A fresh network for ``cfg``; its weights come from the checkpoint, not ``model.weights``."""
    return create_classifier(dataclasses.replace(cfg.model, weights=None), taxset.num_classes)


CLASSIFIER_MODEL = ModelSpec(
    ClassifierConfig, build_classifier, classifier_description, task=TASK,
    wrong_task="tools/train_classifier.py writes classifier checkpoints; a detector's is "
               "scored by tools/evaluate.py")


def load_classifier(path: str | Path, device: str = "cpu", use_ema: bool = True
                    ) -> tuple[torch.nn.Module, supertax.TaxonomySet, ClassifierConfig]:
    """``(model in eval mode on device, the checkpoint's taxonomies, its config)``; the EMA
    weights when the checkpoint has them and ``use_ema``. ``CheckpointError`` naming the file
    for anything but a readable classifier checkpoint."""
    loaded = load_model(path, CLASSIFIER_MODEL, use_ema=use_ema, device=device)
    return loaded.model, loaded.taxset, loaded.config


def folder_images(folders: list[str], taxset: supertax.TaxonomySet) -> list[ClassificationSample]:
    """Every readable image file below ``folders`` (sorted) as an OOD sample; the others
    (truncated, unreadable, too large: ``image_inputs.check_files``) are skipped and counted
    in one warning, as ``predict.py`` does."""
    out = []
    for folder in map(Path, folders):
        if not folder.is_dir():
            raise InputNotFoundError(f"--ood {folder}: no such folder")
        files = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
        out += [ClassificationSample(-len(out) - i - 1, str(p), "", "", OOD,
                                     np.zeros(taxset.num_classes, bool), source_file=str(folder))
                for i, p in enumerate(files)]
    problems = [p for _, p in check_files([Path(s.file) for s in out])]
    warn_skipped([p for p in problems if p], len(out), log)
    return [s for s, p in zip(out, problems) if not p]


def evaluate_checkpoint(path: str | Path, data: list[str], split: str = "val",
                        super_name: str | None = None, ood_folders: list[str] = (),
                        device: str = "cpu", batch_size: int = 64, workers: int = 0
                        ) -> ClassifierEvaluation:
    """Score the checkpoint ``path`` on the classification data of the taxonomies ``data``
    (module docstring). The taxonomies read must have the checkpoint's super-taxonomy."""
    if split not in SPLITS:
        raise ConfigError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    model, own, cfg = load_classifier(path, device)
    taxset = supertax.load(data, super_name=super_name or own.super.name)
    if taxset.super.to_dict() != own.super.to_dict():
        raise CheckpointError(f"{path}: trained for super-taxonomy classes {own.names}, the "
                              f"taxonomies of {' '.join(data)} have {taxset.names}")
    scored = [t.name for t in own.taxonomies if t.name in taxset.index]
    changed = [t for t in scored if own.taxonomy(t).to_dict() != taxset.taxonomy(t).to_dict()]
    if changed:
        raise CheckpointError(f"{path}: taxonomies {', '.join(changed)} changed their labels since "
                              f"the checkpoint was trained (as read from {' '.join(data)})")
    if not scored:
        raise ConfigError(f"{path}: none of its taxonomies ({', '.join(own.index)}) is among "
                          f"those read from {' '.join(data)} ({', '.join(taxset.index)})")
    loaded = load_classification(taxset, allow_unmapped=cfg.data.allow_unmapped)
    train, val = assign_split([s for s in loaded.samples if s.taxonomy in scored], cfg.split)
    samples = {"val": val, "train": train, "all": train + val}[split]
    ood = loaded.ood + folder_images(list(ood_folders), taxset)
    dev = next(model.parameters()).device
    size = cfg.model.image_size

    def logits(items: list) -> np.ndarray:
        loader = eval_loader(ClassificationDataset(items, taxset, size), batch_size, workers)
        return predict_logits(model, loader, dev, taxset.num_classes)

    result = evaluate_logits(logits(samples), samples, logits(ood), own,
                             own.masks.any(axis=0), cfg.loss.sigmoid, scored)
    result.counts.update(split=split, checkpoint=str(path))
    return result
