"""Train one image classifier across every customer's classification dataset of a taxonomy set.

``ClassifierTrainer(cfg).fit()`` runs the engine's loop (``taxdet.detection.engine.trainer_base``:
the warm-up + cosine schedule, EMA, progress bar, ``metrics.jsonl``, TensorBoard and
``curves.png``, atomic checkpoints with the taxonomy hash, exact resume, the stop on a
non-finite loss, the run folder that refuses to overwrite a run) on the classifier's parts: the
concatenated classification data (``taxdet.detection.classification.classifier_loaders``), a
timm classifier and its masked-loss bench.
Validation scores the customer-view top-1 accuracy on the val split (``accuracy``, which picks
``best.pt``).
"""

from __future__ import annotations

import logging

import torch

import taxdet.supertax as supertax
from taxdet.core.errors import ConfigError
from taxdet.detection.classification.classifier_config import ClassifierConfig
from taxdet.detection.classification.classifier_evaluation import evaluate_logits, predict_logits
from taxdet.detection.classification.classifier_loaders import (
    ClassifierData,
    build_classifier_data,
    warn_untaught_classes,
)
from taxdet.detection.classification.classifier_model import create_classifier, fit_class_rows
from taxdet.detection.classification.classifier_wrapper import ClassifierBench
from taxdet.detection.engine import run_folder
from taxdet.detection.engine.trainer_base import TrainerBase
from taxdet.detection.evaluation.results import text_table
from taxdet.detection.training.warm_start import ClassMapping

TASK = "classification"  # checkpoint["task"]: tells a classifier checkpoint from a detector's

logger = logging.getLogger(__name__)


class ClassifierTrainer(TrainerBase):
    """The classifier's trainer: classification data, a timm model and its masked-loss bench on
    the engine's loop; validation is the customer-view accuracy (``accuracy`` picks
    ``best.pt``). No hooks of its own: no pseudo-labels, no anchor-cell coverage."""

    metric = "accuracy"
    task = TASK

    def __init__(self, cfg: ClassifierConfig):
        super().__init__(cfg)
        if self.dist.enabled:
            raise ConfigError("the classifier trains in one process: run "
                              "tools/train_classifier.py without torchrun")
        self.taxset = supertax.load(cfg.data.taxonomies, super_name=cfg.data.super_taxonomy)
        self.data: ClassifierData = build_classifier_data(cfg, self.taxset)
        self.model = self.place_model(create_classifier(cfg.model, self.taxset.num_classes))
        self.init_weights()
        self.bench = ClassifierBench(self.model, torch.as_tensor(self.taxset.ancestors),
                                     cfg.loss, cfg.run.taxonomy_mask).to(self.device)
        self.train_module = self.bench
        self.start_loop()

    def model_description(self) -> str:
        m = self.cfg.model
        return f"timm {m.name} at {m.image_size}px with {self.taxset.num_classes} classes"

    def warm_start(self, ckpt: dict, weights: dict, path: str) -> tuple[dict, dict, str]:
        """A classifier checkpoint of other taxonomies: the classifier rows of the classes both
        have (matched by name) are kept, new classes start fresh."""
        old = supertax.TaxonomySet.from_dict(ckpt["taxonomies"]).names
        mapping = ClassMapping.by_name(old, self.taxset.names)
        fitted = fit_class_rows(self.model, weights, mapping.kept)
        return fitted, {"checkpoint": str(path), **mapping.to_dict()}, mapping.summary()

    def warn_before_training(self) -> None:
        empty = warn_untaught_classes(self.data.train.samples, self.taxset)
        if empty:
            logger.warning(f"no training image teaches class(es) {', '.join(map(repr, empty))} "
                           "(none of the class or below it): their columns learn only to say no")
        logger.info(f"classification data: {len(self.data.train)} training and "
                    f"{len(self.data.val)} validation images; {len(self.data.ood)} OOD images "
                    "(labels with maps_to: null) kept aside")

    def validate(self) -> dict:
        """Customer-view top-1 accuracy of the EMA (or raw) model on the val split: mean over
        the taxonomies (``accuracy``) and per taxonomy."""
        model = self.ema.module if self.ema is not None else self.model
        logits = predict_logits(model, self.data.val_loader(), self.device,
                                self.taxset.num_classes)
        self.model.train()  # predict_logits switched it to eval when there is no EMA
        if not len(logits):
            return {}
        result = evaluate_logits(logits, self.data.val.samples, logits[:0], self.taxset,
                                 self.taxset.masks.any(axis=0), self.cfg.loss.sigmoid)
        self.last_eval = result
        return {"accuracy": result.headline()["accuracy"], "ECE": result.ece,
                "per_taxonomy": {t.taxonomy: t.top_n[1] for t in result.tasks}}

    def summary(self) -> str:
        s, m = self.state, self.cfg.model
        lines = [f"trained {s.step} steps ({s.epoch} full epochs) of {m.name} at "
                 f"{m.image_size}px on {len(self.data.train)} images of "
                 f"{len(self.taxset.taxonomies)} taxonomies (loss {self.cfg.loss.name}, taxonomy "
                 f"mask {'on' if self.cfg.run.taxonomy_mask else 'OFF'})",
                 f"best val accuracy {s.best_metric:.4f} (customer view, mean over taxonomies); "
                 f"checkpoints in {self.out} (last.pt, best.pt; {run_folder.SPLIT})"]
        if self.last_eval is not None:
            title, rows = self.last_eval.tables()[0]
            lines.append(f"{title}\n{text_table(rows)}")
        return "\n".join(lines)
