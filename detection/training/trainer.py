"""Train one EfficientDet across every customer dataset of a taxonomy set.

``Trainer(cfg).fit()`` merges the datasets (or reads a prepared ``super.json``), splits them,
builds the model (optionally warm-started from a checkpoint of other taxonomies,
``taxdet.detection.training.warm_start``) and the masked training bench, and runs the loop (``fit``,
over ``taxdet.detection.engine.train_step``) with validation, JSON-lines metrics, atomic checkpoints
(``last.pt``, ``best.pt``) and the split it trained on (``split.json``).

Decoding: validation scores with coverage decoding (``taxdet.detection.prediction.
hierarchy_decoding``) under the decoding plan of the coverage counts so far
(``taxdet.detection.training.coverage.decoding_plan``), and every checkpoint records that plan
(``decoding_plan``) for prediction, evaluation, export and the service. Before the first step
the columns the taxonomies leave without background negatives are logged with their decoding
(the validator's text, ``taxdet.supertax.validate.decoding_notes``).
"""

from __future__ import annotations

import logging

import numpy as np
import torch
from torch.nn.parallel import DistributedDataParallel

import taxdet.supertax as supertax
from taxdet.detection.anchors import fit
from taxdet.detection.engine import distributed
from taxdet.detection.engine.hooks import HookBase
from taxdet.detection.engine.trainer_base import TrainerBase
from taxdet.detection.evaluation import evaluate, load_ground_truth
from taxdet.detection.model.build import anchor_spec, create_model
from taxdet.detection.model.detector_config import TrainConfig
from taxdet.detection.model.detector_wrappers import PredictBench, TrainBench
from taxdet.detection.model.drawable_boxes import DroppedBoxes, warn_dropped
from taxdet.detection.prediction.hierarchy_decoding import set_hierarchy_decoding
from taxdet.detection.prediction.predictor import predict
from taxdet.detection.training import warm_start
from taxdet.detection.training.coverage import decoding_plan
from taxdet.detection.training.detection_hooks import CoverageReport, PseudoLabelTeacher
from taxdet.detection.training.pseudo_schedule import class_thresholds
from taxdet.detection.training.train_data import TrainData, build_data, warn_empty_classes
from taxdet.supertax.validate import decoding_notes

logger = logging.getLogger(__name__)


def warn_anchor_fit(samples: list, cfg: TrainConfig, max_boxes: int = 50_000) -> None:
    """Log a warning when the anchors reach ``labeler.pos_iou`` with under 95 % of the
    training boxes (best-possible recall, on the boxes of random images, about ``max_boxes``)."""
    size = cfg.model.image_size
    counts = np.array([len(s.boxes) for s in samples], np.int64)
    if counts.sum() > max_boxes:
        order = np.random.default_rng(0).permutation(len(samples))
        keep = order[:int(np.searchsorted(np.cumsum(counts[order]), max_boxes)) + 1]
        samples = [samples[i] for i in np.sort(keep)]
    boxes = fit.model_input_boxes(samples, size)
    result = fit.evaluate_spec(anchor_spec(cfg.model), boxes, size, cfg.labeler.pos_iou)
    if result.bpr < fit.BPR_WARN:
        logger.warning(f"the anchors reach IoU {cfg.labeler.pos_iou} with only {result.bpr:.1%} "
                       f"of the training boxes at {size} px (best-possible recall); "
                       f"tools/fit_anchors.py --image-size {size} proposes anchors that reach "
                       "more (compare them in a short run: docs/training.md#anchors)")


class Trainer(TrainerBase):
    """The detector's trainer: the detection data, EfficientDet and its masked training bench
    on the engine's loop; validation is the federated AP (``AP`` picks ``best.pt``)."""

    metric = "AP"

    def __init__(self, cfg: TrainConfig):
        super().__init__(cfg)
        self.taxset = supertax.load(cfg.data.taxonomies, super_name=cfg.data.super_taxonomy)
        self.data: TrainData = build_data(cfg, self.taxset, self.dist, self.start_folder)
        self.model = self.place_model(create_model(cfg.model, self.taxset.num_classes,
                                                   head_masks=np.asarray(self.taxset.masks)))
        self.init_weights()
        self.bench = TrainBench(self.model, torch.as_tensor(self.taxset.ancestors), cfg.labeler,
                                cfg.loss, taxonomy_mask=cfg.run.taxonomy_mask,
                                pseudo=cfg.pseudo if cfg.pseudo.enabled else None,
                                num_taxonomies=len(self.taxset.index),
                                coarse_parents=torch.as_tensor(self.taxset.super.exhaustive)
                                ).to(self.device)
        if cfg.run.sync_bn and self.dist.enabled:
            self.bench = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.bench)
        # per-taxonomy heads: the heads of taxonomies absent from a batch get no gradient
        self.train_module = (DistributedDataParallel(
            self.bench, device_ids=self._ddp_ids(),
            find_unused_parameters=cfg.model.heads == "per-taxonomy")
            if self.dist.enabled else self.bench)
        self._val_gt = None
        self._warned_dropped = False
        self._counts: np.ndarray | None = None   # the ranks' coverage counts at the last save
        if cfg.pseudo.enabled and cfg.pseudo.class_precision > 0:   # none until a validation
            self._set_pseudo_thresholds(np.full(self.taxset.num_classes, np.inf, np.float32))
        hooks: list[HookBase] = [CoverageReport()]
        if cfg.pseudo.enabled:
            hooks.insert(0, PseudoLabelTeacher())
        self.start_loop(hooks)

    def model_description(self) -> str:
        m = self.cfg.model
        return (f"{m.name} at {m.image_size}px with {self.taxset.num_classes} classes "
                f"({m.heads} heads)")

    def warm_start(self, ckpt: dict, weights: dict, path: str) -> tuple[dict, dict, str]:
        fitted = warm_start.warm_start(ckpt, self.model, self.taxset, self.cfg.model.heads, path)
        return fitted.weights, fitted.record, fitted.mapping.summary()

    def warn_before_training(self) -> None:
        """Warnings about the data and the never-background columns, logged once before the
        first step."""
        warn_anchor_fit(self.data.train.samples, self.cfg)
        warn_empty_classes(self.data.train.samples, self.taxset)
        if self.cfg.run.taxonomy_mask or self.cfg.model.heads == "per-taxonomy":  # masked
            for note in decoding_notes(self.taxset.super, self.taxset.taxonomies):
                logger.warning(note)
        p = self.cfg.pseudo
        if p.enabled and (p.start_ap > 0 or p.class_precision > 0) and not self.data.val.samples:
            logger.warning("pseudo.start_ap and pseudo.class_precision wait for validations, "
                           "but the val split is empty: the teacher will never pseudo-label "
                           "(give split.val_fraction > 0)")

    # -- decoding plan -------------------------------------------------------------------------
    def coverage_counts(self) -> np.ndarray:
        """``[T, 6, K]`` the coverage counts of every rank so far, summed (a collective under
        DDP: every rank calls it; ``save`` and ``CoverageReport`` do)."""
        counts = self.bench.coverage.to(self.device)    # on the CPU until the first step
        return distributed.sum_over_ranks(counts, self.dist).cpu().numpy()

    def decoding_plan(self, counts: np.ndarray | None = None) -> dict | None:
        """The decoding plan of the coverage counts (``coverage_counts`` when not given; None
        before any)."""
        counts = self.coverage_counts() if counts is None else counts
        return decoding_plan(counts, np.asarray(self.taxset.ancestors), list(self.taxset.names))

    def save(self, name: str) -> None:
        """Sum the ranks' coverage counts (all ranks), then save on the main rank."""
        self._counts = self.coverage_counts()
        super().save(name)

    def checkpoint_state(self) -> dict:
        """The engine's checkpoint, plus the coverage counts and the decoding plan
        (``decoding_plan``) when known."""
        state = super().checkpoint_state()
        counts = self.bench.coverage.cpu().numpy() if self._counts is None else self._counts
        state["coverage"] = torch.as_tensor(counts)
        if self.bench.pseudo_thresholds is not None:
            state["pseudo_thresholds"] = self.bench.pseudo_thresholds.cpu()
        plan = self.decoding_plan(counts)
        if plan is not None:
            state["decoding_plan"] = plan
        return state

    def _restore(self, ckpt: dict) -> None:
        """The engine's state, and the coverage counts so far (kept on the main rank only, so
        that the ranks' sum counts them once)."""
        super()._restore(ckpt)
        if isinstance(ckpt.get("pseudo_thresholds"), torch.Tensor):
            self._set_pseudo_thresholds(ckpt["pseudo_thresholds"].numpy())
        counts = ckpt.get("coverage")
        if (self.dist.is_main and isinstance(counts, torch.Tensor)
                and counts.shape == self.bench.coverage.shape):
            self.bench.coverage = counts.to(self.bench.coverage)

    # -- validation ----------------------------------------------------------------------------
    def validate(self) -> dict:
        """Federated, per-taxonomy mAP of the EMA (or raw) model on the val split.

        Every rank predicts its share of the val images with rank 0's weights and batch-norm
        statistics; rank 0 gathers the predictions, evaluates, and sends the metrics to every
        rank (all return the same dict).
        """
        model = self.ema.module if self.ema is not None else self.model
        distributed.broadcast_state(model, self.dist)  # every rank predicts with rank 0's model
        plan = self.decoding_plan()       # of every rank's counts (a collective), the same on all
        predictor = PredictBench(model).to(self.device)
        set_hierarchy_decoding(predictor, self.taxset, None, plan)
        loader = self.data.val_loader(self.dist.rank, self.dist.world_size)
        results = predict(predictor, loader, self.device)
        self.model.train()  # predict() switched it to eval when there is no EMA
        parts = distributed.gather_objects((results, predictor.dropped), self.dist)
        metrics = thresholds = None
        if self.dist.is_main:
            merged = [r for part, _ in parts for r in part]
            metrics = self._evaluate(merged)
            metrics.update(self._decoding_record(predictor.decoding, [d for _, d in parts]))
            thresholds = self._pseudo_thresholds(merged)
        self._set_pseudo_thresholds(distributed.broadcast_object(thresholds, self.dist))
        return distributed.broadcast_object(metrics, self.dist)

    def _pseudo_thresholds(self, results: list[dict]) -> np.ndarray | None:
        """The teacher's per-class pseudo-positive thresholds fitted on these validation
        results (``pseudo.class_precision``; None when off or without validation images)."""
        p = self.cfg.pseudo
        if not (p.enabled and p.class_precision > 0 and self._val_gt is not None):
            return None
        return class_thresholds(self._val_gt, results, list(self.taxset.names),
                                p.class_precision)

    def _set_pseudo_thresholds(self, thresholds: np.ndarray | None) -> None:
        if thresholds is not None:
            self.bench.pseudo_thresholds = torch.as_tensor(thresholds, device=self.device)
        if thresholds is not None and self.dist.is_main and np.isfinite(thresholds).any():
            logger.info("pseudo-label thresholds (teacher precision >= %g on the customers "
                        "that label the class): %s", self.cfg.pseudo.class_precision,
                        ", ".join(f"{n} {t:.3f}" for n, t in zip(self.taxset.names,
                                                                 thresholds.tolist())))

    def _decoding_record(self, decoding: str, dropped: list[DroppedBoxes]) -> dict:
        """``{"decoding", "degenerate_boxes_dropped"}`` for the validation metrics; the first
        validation that dropped boxes logs one warning."""
        total = DroppedBoxes()
        for d in dropped:
            total.merge(d)
        if total.boxes and not self._warned_dropped:
            warn_dropped(total, f"validation at step {self.state.step}", logger)
            self._warned_dropped = True
        return {"decoding": decoding, **total.info()}

    def _evaluate(self, results: list[dict]) -> dict:
        if not self.data.val_gt["images"]:
            return {}
        if self._val_gt is None:
            self._val_gt = load_ground_truth(self.data.val_gt, taxset=self.taxset)
        self.last_eval = evaluate(self._val_gt, results, taxset=self.taxset)
        return self.last_eval.to_dict()

    def summary(self) -> str:
        """What was trained, how long, how well, and where it is."""
        s = self.state
        lines = [f"trained {s.step} steps ({s.epoch} full epochs) of {self.cfg.model.name} at "
                 f"{self.cfg.model.image_size}px on {len(self.data.train)} images of "
                 f"{len(self.taxset.taxonomies)} taxonomies (taxonomy mask "
                 f"{'on' if self.cfg.run.taxonomy_mask else 'OFF'})",
                 f"best federated val AP {s.best_metric:.4f}; checkpoints in {self.out} "
                 f"(last.pt, best.pt)"]
        if self.last_eval is not None:
            lines.append(self.last_eval.format_table())
        return "\n".join(lines)
