"""Train one image classifier across every customer's classification dataset of a taxonomy set.

``ClassifierTrainer(cfg).fit()`` runs the detector's loop (``taxdet.detection.training.trainer.Trainer``:
the warm-up + cosine schedule, EMA, progress bar, ``metrics.jsonl``, atomic checkpoints with the
taxonomy hash, exact resume, the stop on a non-finite loss, the run folder that refuses to
overwrite a run) on what it builds instead of the detector: the concatenated classification
data (``taxdet.detection.classification.classifier_loaders``), a timm classifier and its masked-loss bench.
Validation scores the customer-view top-1 accuracy on the val split (``accuracy``, which picks
``best.pt``).
"""

from __future__ import annotations

import sys

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
from taxdet.detection.classification.classifier_model import (
    classifier_keys,
    copy_class_rows,
    create_classifier,
)
from taxdet.detection.classification.classifier_wrapper import ClassifierBench
from taxdet.detection.evaluation.results import text_table
from taxdet.detection.training import checkpoint, run_folder
from taxdet.detection.training.trainer import Trainer
from taxdet.detection.training.warm_start import ClassMapping

TASK = "classification"  # checkpoint["task"]: tells a classifier checkpoint from a detector's


class ClassifierTrainer(Trainer):
    score_key = "accuracy"

    def __init__(self, cfg: ClassifierConfig):
        self._start_run(cfg)
        if self.dist.enabled:
            raise ConfigError("the classifier trains in one process: run "
                              "tools/train_classifier.py without torchrun")
        self.taxset = supertax.load(cfg.data.taxonomies, super_name=cfg.data.super_taxonomy)
        self.data: ClassifierData = build_classifier_data(cfg, self.taxset)
        self.model = create_classifier(cfg.model, self.taxset.num_classes).to(self.device)
        if cfg.run.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.init_mapping: dict | None = None
        if cfg.run.init_checkpoint:
            self._init_from(cfg.run.init_checkpoint)
        self.bench = ClassifierBench(self.model, torch.as_tensor(self.taxset.ancestors),
                                     cfg.loss, cfg.run.taxonomy_mask).to(self.device)
        self.train_module = self.bench
        self._start_loop()

    def _model_description(self) -> str:
        m = self.cfg.model
        return f"timm {m.name} at {m.image_size}px with {self.taxset.num_classes} classes"

    def _init_from(self, path: str) -> None:
        """Start from a classifier checkpoint's weights; one of other taxonomies keeps the
        classifier rows of the classes both have (matched by name), new classes start fresh."""
        ckpt = checkpoint.load(path, bare=True)
        weights = ckpt.get("model", ckpt)
        if "taxonomy_hash" in ckpt and ckpt["taxonomy_hash"] != self.taxset.hash:
            if "taxonomies" not in ckpt:
                checkpoint.check_taxonomy(ckpt, self.taxset, path)
            old = supertax.TaxonomySet.from_dict(ckpt["taxonomies"]).names
            mapping = ClassMapping.by_name(old, self.taxset.names)
            head = classifier_keys(self.model)
            fresh = {k: v for k, v in self.model.state_dict().items() if k in head}
            self._load_weights({**weights, **fresh}, path, "the weights (--init-checkpoint)")
            copy_class_rows(self.model, weights, mapping.kept)
            self.init_mapping = {"checkpoint": str(path), **mapping.to_dict()}
            print(f"init-checkpoint {path}: trained for other taxonomies; classes matched by "
                  f"name: {mapping.summary()}")
            return
        self._load_weights(weights, path, "the weights (--init-checkpoint)")

    def _checkpoint_state(self) -> dict:
        return {**super()._checkpoint_state(), "task": TASK}

    def _teacher(self) -> None:
        return None  # no pseudo-labels for the classifier

    def _warn_before_training(self) -> None:
        empty = warn_untaught_classes(self.data.train.samples, self.taxset)
        if empty:
            print(f"warning: no training image teaches class(es) {', '.join(map(repr, empty))} "
                  "(none of the class or below it): their columns learn only to say no",
                  file=sys.stderr)
        print(f"classification data: {len(self.data.train)} training and {len(self.data.val)} "
              f"validation images; {len(self.data.ood)} OOD images (labels with maps_to: null) "
              "kept aside", file=sys.stderr)

    def _report_coverage(self) -> None:
        pass  # anchor-cell coverage is the detector's

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
                 f"best val accuracy {s.best_ap:.4f} (customer view, mean over taxonomies); "
                 f"checkpoints in {self.out} (last.pt, best.pt; {run_folder.SPLIT})"]
        if self.last_eval is not None:
            title, rows = self.last_eval.tables()[0]
            lines.append(f"{title}\n{text_table(rows)}")
        return "\n".join(lines)
