"""Train one EfficientDet across every customer dataset of a taxonomy set.

``Trainer(cfg).fit()`` merges the datasets (or reads a prepared ``super.json``), splits them,
builds the model (optionally warm-started from a checkpoint of other taxonomies,
``taxdet.detection.training.warm_start``) and the masked training bench, and runs the loop (``fit``,
over ``taxdet.detection.training.steps``) with validation, JSON-lines metrics, atomic checkpoints
(``last.pt``, ``best.pt``) and the split it trained on (``split.json``).
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from timm.utils import ModelEmaV3
from torch.nn.parallel import DistributedDataParallel

import taxdet.supertax as supertax
from taxdet.core.errors import ConfigError
from taxdet.detection.anchors import fit
from taxdet.detection.evaluation import evaluate, load_ground_truth
from taxdet.detection.model.build import create_model
from taxdet.detection.model.detector_wrappers import PredictBench, TrainBench
from taxdet.detection.training import checkpoint, distributed, run_folder, warm_start
from taxdet.detection.training.coverage import coverage_table, write_coverage
from taxdet.detection.training.progress import Progress
from taxdet.detection.training.steps import (
    NonFiniteLossError,
    effective_warmup,
    predict,
    to_device,
    train_step,
    warmup_cosine,
)
from taxdet.detection.training.train_config import TrainConfig
from taxdet.detection.training.train_data import TrainData, build_data, warn_empty_classes


@dataclass
class TrainState:
    step: int = 0                 # optimizer steps done
    epoch: int = 0                # current epoch
    batch_in_epoch: int = 0       # batches of ``epoch`` already trained
    best_ap: float = -1.0
    history: list = field(default_factory=list)
    train_seconds: float = 0.0    # wall time in training steps (data waits in, validation out)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


RESUME_KEYS = checkpoint.RESUME_KEYS

# settings that do not change what is trained: a resumed run may differ in these
RESUME_FREE = {"run.resume", "run.output", "run.progress", "run.log_every", "run.val_every",
               "run.init_checkpoint", "run.overwrite"}


def config_changes(old: dict, new: dict, prefix: str = "") -> list[str]:
    """``"optim.steps: 5 -> 10"`` for every leaf of two ``TrainConfig.to_dict()`` trees that
    differs, except ``RESUME_FREE``."""
    out = []
    for key in sorted(set(old) | set(new)):
        a, b, name = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, f"{name}.")
        elif name not in RESUME_FREE and a != b and not (
                isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
                and list(a) == list(b)):
            out.append(f"{name}: {a!r} -> {b!r}")
    return out


def warn_anchor_fit(samples: list, cfg: TrainConfig, max_boxes: int = 50_000) -> None:
    """Print a warning when the anchors reach ``labeler.pos_iou`` with under 95 % of the
    training boxes (best-possible recall, on the boxes of random images, about ``max_boxes``)."""
    size = cfg.model.image_size
    counts = np.array([len(s.boxes) for s in samples], np.int64)
    if counts.sum() > max_boxes:
        order = np.random.default_rng(0).permutation(len(samples))
        keep = order[:int(np.searchsorted(np.cumsum(counts[order]), max_boxes)) + 1]
        samples = [samples[i] for i in np.sort(keep)]
    boxes = fit.model_input_boxes(samples, size)
    result = fit.evaluate_spec(fit.spec_of(cfg.model), boxes, size, cfg.labeler.pos_iou)
    if result.bpr < fit.BPR_WARN:
        print(f"warning: the anchors reach IoU {cfg.labeler.pos_iou} with only {result.bpr:.1%} "
              f"of the training boxes at {size} px (best-possible recall); "
              f"tools/fit_anchors.py --image-size {size} proposes anchors that reach more "
              "(compare them in a short run: docs/training.md#anchors)", file=sys.stderr)


class Trainer:
    """The detector's trainer. The loop, checkpoints, resume and logging are generic over what
    ``__init__`` builds between ``_start_run`` and ``_start_loop`` (``data``, ``model``,
    ``train_module``); ``taxdet.detection.classification.classifier_trainer.ClassifierTrainer`` builds an image
    classifier there and replaces the detection hooks (validation, start warnings, coverage)."""

    score_key = "AP"  # the validation metric that picks best.pt (``state.best_ap``)

    def __init__(self, cfg: TrainConfig):
        self._start_run(cfg)
        self.taxset = supertax.load(cfg.data.taxonomies, super_name=cfg.data.super_taxonomy)
        self.data: TrainData = build_data(cfg, self.taxset, self.dist, self._start_folder)
        self.model = create_model(cfg.model, self.taxset.num_classes,
                                  head_masks=np.asarray(self.taxset.masks)).to(self.device)
        if cfg.run.channels_last:
            self.model = self.model.to(memory_format=torch.channels_last)
        self.init_mapping: dict | None = None   # init_mapping.json: how the classes matched
        if cfg.run.init_checkpoint:
            self._init_from(cfg.run.init_checkpoint)
        self.bench = TrainBench(self.model, torch.as_tensor(self.taxset.ancestors), cfg.labeler,
                                cfg.loss, taxonomy_mask=cfg.run.taxonomy_mask,
                                pseudo=cfg.pseudo if cfg.pseudo.enabled else None,
                                num_taxonomies=len(self.taxset.index)).to(self.device)
        if cfg.run.sync_bn and self.dist.enabled:
            self.bench = torch.nn.SyncBatchNorm.convert_sync_batchnorm(self.bench)
        # per-taxonomy heads: the heads of taxonomies absent from a batch get no gradient
        self.train_module = (DistributedDataParallel(
            self.bench, device_ids=self._ddp_ids(),
            find_unused_parameters=cfg.model.heads == "per-taxonomy")
            if self.dist.enabled else self.bench)
        self._start_loop()

    # -- set-up helpers -------------------------------------------------------------------------
    def _start_run(self, cfg) -> None:
        """Config, device, seeds, and the run folder's check (nothing written yet)."""
        self.cfg = cfg
        self.dist, self.device = distributed.init(cfg.run.device)
        seed_everything(cfg.run.seed)
        self.out = Path(cfg.run.output)
        run_folder.check_run_folder(self.out, cfg.run.resume, cfg.run.overwrite)
        self._folder_started = False

    def _start_loop(self) -> None:
        """Optimizer, schedule, scaler, EMA and loop state for ``self.model`` (then resume)."""
        cfg = self.cfg
        self.optimizer = self._optimizer()
        self.total_steps = self._total_steps()
        o = cfg.optim
        self.warmup_steps, self._warmup_warning = effective_warmup(o.warmup_steps,
                                                                   self.total_steps, o.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: warmup_cosine(s, self.total_steps, self.warmup_steps, o.min_lr_ratio))
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=o.amp and self.device.type == "cuda")
        self.ema = (ModelEmaV3(self.model, decay=o.ema_decay, use_warmup=True)
                    if o.ema_decay > 0 else None)
        self.state = TrainState()
        self._epoch_ids: list[int] = []   # image ids this rank trained in the current epoch
        self._val_gt, self.last_eval = None, None
        # called with the trainer after every validation (e.g. a test-split evaluation)
        self.on_validate: list[Callable[[Trainer], None]] = []
        if cfg.run.resume:
            self._resume(cfg.run.resume)

    def _ddp_ids(self):
        return [self.device.index] if self.device.type == "cuda" else None

    def _optimizer(self) -> torch.optim.Optimizer:
        o = self.cfg.optim
        decay, no_decay = [], []
        for p in self.model.parameters():
            (no_decay if p.ndim <= 1 else decay).append(p)  # no decay on norms and biases
        groups = [{"params": decay, "weight_decay": o.weight_decay},
                  {"params": no_decay, "weight_decay": 0.0}]
        if o.optimizer == "adamw":
            return torch.optim.AdamW(groups, lr=o.lr)
        if o.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=o.lr, momentum=o.momentum, nesterov=True)
        raise ConfigError(f"unknown optimizer {o.optimizer!r}; use adamw or sgd")

    def _total_steps(self) -> int:
        by_epochs = self.cfg.optim.epochs * self.data.steps_per_epoch
        return min(by_epochs, self.cfg.optim.steps) if self.cfg.optim.steps > 0 else by_epochs

    def _load_weights(self, weights, path: str, what: str) -> None:
        """``self.model.load_state_dict(weights)``; a ``CheckpointError`` naming the file and
        the first misfitting keys when they do not fit."""
        misfit = checkpoint.weights_misfit(self.model, weights)
        if misfit:
            raise checkpoint.CheckpointError(
                f"{path}: {what} do not fit {self._model_description()}: {'; '.join(misfit)}")
        self.model.load_state_dict(weights)

    def _model_description(self) -> str:
        m = self.cfg.model
        return (f"{m.name} at {m.image_size}px with {self.taxset.num_classes} classes "
                f"({m.heads} heads)")

    def _init_from(self, path: str) -> None:
        """Start from the weights of a checkpoint, or of a bare effdet state dict (no digest
        needed; still read without running code from it). A checkpoint of other taxonomies is
        matched by class name (``warm_start``); the mapping is printed and kept for
        ``init_mapping.json``."""
        ckpt = checkpoint.load(path, bare=True)
        weights = ckpt.get("model", ckpt)
        if "taxonomy_hash" in ckpt and ckpt["taxonomy_hash"] != self.taxset.hash:
            if "taxonomies" not in ckpt:
                checkpoint.check_taxonomy(ckpt, self.taxset, path)  # names what it cannot read
            fitted = warm_start.warm_start(ckpt, self.model, self.taxset, self.cfg.model.heads,
                                           path)
            weights, self.init_mapping = fitted.weights, fitted.record
            if self.dist.is_main:
                print(f"init-checkpoint {path}: trained for other taxonomies; classes matched "
                      f"by name: {fitted.mapping.summary()} (details: "
                      f"{self.out / run_folder.INIT_MAPPING})")
        self._load_weights(weights, path, "the weights (--init-checkpoint)")

    def _resume(self, path: str) -> None:
        ckpt = checkpoint.load(path, required=RESUME_KEYS)
        checkpoint.check_taxonomy(ckpt, self.taxset, path, hint=(
            "a resumed run keeps its taxonomies; to continue training with these, start a new "
            f"run with --init-checkpoint {path} (classes are matched by name)"))
        if not isinstance(ckpt["config"], dict):
            raise checkpoint.CheckpointError(f"{path}: its 'config' is not a mapping")
        changed = config_changes(ckpt["config"], self.cfg.to_dict())
        if changed and self.dist.is_main:
            print(f"warning: {path}: resuming with other settings than the checkpoint's, so the "
                  f"run will not continue exactly: {'; '.join(changed)}", file=sys.stderr)
        self._load_weights(ckpt["model"], path, "the weights")
        try:
            self._restore(ckpt)
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise checkpoint.CheckpointError(
                f"{path}: cannot resume from it ({type(exc).__name__}: {exc})") from None

    def _restore(self, ckpt: dict) -> None:
        """EMA, optimizer, schedule, scaler, loop state and RNGs of a (verified) checkpoint."""
        if self.ema is not None and ckpt.get("ema") is not None:
            self.ema.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.state = TrainState(**ckpt["state"])
        checkpoint.set_rng_state(ckpt["rng"])

    # -- outputs -------------------------------------------------------------------------------
    def _checkpoint_state(self) -> dict:
        return {"model": self.model.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "state": vars(self.state).copy(),
                "rng": checkpoint.rng_state(), "config": self.cfg.to_dict(),
                "taxonomies": self.taxset.to_dict(), "taxonomy_hash": self.taxset.hash}

    def save(self, name: str) -> None:
        if self.dist.is_main:
            checkpoint.save_atomic(self._checkpoint_state(), self.out / name)

    def log(self, record: dict) -> None:
        if self.dist.is_main:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def _start_folder(self) -> None:
        """Create the run folder (removing the old run's files with ``--overwrite``), once."""
        if self.dist.is_main and not self._folder_started:
            run_folder.start_run_folder(self.out, self.cfg.run.overwrite)
            self._folder_started = True

    def write_run_files(self) -> None:
        if not self.dist.is_main:
            return
        self._start_folder()
        run_folder.write_run_files(self.out, self.cfg.to_dict(), self.taxset.hash,
                                   self.taxset.to_dict(), self.data.report)
        run_folder.write_split(self.out, self.data.train.samples, self.data.val.samples,
                               self.cfg.split)
        if self.init_mapping is not None:
            run_folder.write_init_mapping(self.out, self.init_mapping)

    # -- validation ----------------------------------------------------------------------------
    def validate(self) -> dict:
        """Federated, per-taxonomy mAP of the EMA (or raw) model on the val split.

        Every rank predicts its share of the val images with rank 0's weights and batch-norm
        statistics; rank 0 gathers the predictions, evaluates, and sends the metrics to every
        rank (all return the same dict).
        """
        model = self.ema.module if self.ema is not None else self.model
        distributed.broadcast_state(model, self.dist)  # every rank predicts with rank 0's model
        predictor = PredictBench(model).to(self.device)
        loader = self.data.val_loader(self.dist.rank, self.dist.world_size)
        results = predict(predictor, loader, self.device)
        self.model.train()  # predict() switched it to eval when there is no EMA
        parts = distributed.gather_objects(results, self.dist)
        metrics = self._evaluate([r for part in parts for r in part]) if self.dist.is_main else None
        return distributed.broadcast_object(metrics, self.dist)

    def _evaluate(self, results: list[dict]) -> dict:
        if not self.data.val_gt["images"]:
            return {}
        if self._val_gt is None:
            self._val_gt = load_ground_truth(self.data.val_gt, taxset=self.taxset)
        self.last_eval = evaluate(self._val_gt, results, taxset=self.taxset)
        return self.last_eval.to_dict()

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> TrainState:
        """Train until the step budget is spent; validate + checkpoint per epoch or
        ``val_every``."""
        self.write_run_files()
        if self.dist.is_main and not self.state.step:
            self._warn_before_training()
            if self._warmup_warning:
                print(f"warning: {self._warmup_warning}", file=sys.stderr)
        s = self.state
        progress = Progress(self.total_steps, s.step,
                            enabled=self.cfg.run.progress and self.dist.is_main)
        try:
            while s.step < self.total_steps:
                self._train_epoch(progress)
                self._log_rank_shares()
                if s.batch_in_epoch >= self.data.steps_per_epoch:
                    s.epoch, s.batch_in_epoch = s.epoch + 1, 0
                    if self.cfg.run.val_every == 0:
                        self._validate_and_save()
        finally:
            progress.close()
        if not s.history or s.history[-1]["step"] != s.step:
            self._validate_and_save()
        if self.dist.is_main:
            self._report_coverage()
        distributed.barrier(self.dist)
        return s

    def _warn_before_training(self) -> None:
        """Warnings about the data, printed once before the first step."""
        warn_anchor_fit(self.data.train.samples, self.cfg)
        warn_empty_classes(self.data.train.samples, self.taxset)

    def _report_coverage(self) -> None:
        """Print and save the supervision counts of this process's steps (``coverage.json``)."""
        names = sorted(self.taxset.index, key=self.taxset.index.get)
        report, warnings = write_coverage(self.bench.coverage.cpu().numpy(), names,
                                          list(self.taxset.names), self.out)
        if self.cfg.run.progress:
            print("supervision coverage (anchor cells, all taxonomies; per taxonomy in "
                  f"{self.out / 'coverage.json'}):\n{coverage_table(report)}")
        for line in warnings:
            print(f"warning: {line}", file=sys.stderr)

    def _teacher(self) -> torch.nn.Module | None:
        """The EMA model once pseudo-labels start, else None."""
        p = self.cfg.pseudo
        if p.enabled and self.ema is not None and self.state.step >= p.start_step:
            return self.ema.module
        return None

    def _train_epoch(self, progress: Progress) -> None:
        """Train the rest of epoch ``state.epoch`` (or until the step budget is spent).

        Resuming mid-epoch re-reads the epoch's first ``batch_in_epoch`` batches without
        training on them: loading them advances the augmentation streams exactly as in the
        interrupted run (the cost of exactness is one pass of data loading over them).
        """
        cfg, s = self.cfg, self.state
        self._epoch_ids = []
        t0, seen, tick = None, 0, time.perf_counter()
        for i, batch in enumerate(self.data.train_loader(s.epoch)):
            if i < s.batch_in_epoch:
                continue  # resuming mid-epoch: the same batches, already trained
            if s.step >= self.total_steps:
                return
            t0 = time.perf_counter() if t0 is None else t0
            batch = to_device(batch, self.device, cfg.run.channels_last)
            try:  # steps are numbered from 1 in messages, as in metrics.jsonl
                losses = train_step(self.train_module, batch, self.optimizer, self.scaler,
                                    cfg.optim.clip_grad, s.step + 1, teacher=self._teacher())
            except NonFiniteLossError as exc:
                self._stop_non_finite(exc)
            lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used
            self.scheduler.step()
            if self.ema is not None:
                self.ema.update(self.model, step=s.step)
            s.step, s.batch_in_epoch = s.step + 1, i + 1
            self._epoch_ids += batch["image_id"].tolist()
            seen += batch["image"].shape[0] * self.dist.world_size
            rate = seen / max(time.perf_counter() - t0, 1e-9)
            progress.update(losses["loss"], rate)
            if s.step % cfg.run.log_every == 0 or s.step == self.total_steps:
                self.log({"step": s.step, "epoch": s.epoch, **losses,
                          "lr": lr, "images_per_s": round(rate, 2)})
            now = time.perf_counter()
            s.train_seconds, tick = s.train_seconds + now - tick, now
            if cfg.run.val_every and s.step % cfg.run.val_every == 0:
                self._validate_and_save()
                tick = time.perf_counter()

    def _stop_non_finite(self, exc: NonFiniteLossError) -> None:
        """Log the failure and re-raise naming the checkpoint that stays (nothing is saved)."""
        last = self.out / "last.pt"
        if last.exists() and self.state.history:
            kept = f"the last good checkpoint is {last} (step {self.state.history[-1]['step']})"
        else:
            kept = f"no checkpoint was written yet in {self.out}"
        self.log({"step": self.state.step + 1, "epoch": self.state.epoch, "error": str(exc)})
        raise NonFiniteLossError(f"{exc}\n{kept}") from None

    def _log_rank_shares(self) -> None:
        """Distributed runs: how many images each rank trained this epoch (since the start or
        resume) and a digest of their ids in order, so the shares can be checked."""
        if not self.dist.enabled:
            return
        digest = hashlib.sha1(json.dumps(self._epoch_ids).encode()).hexdigest()[:16]
        shares = distributed.all_gather_objects((len(self._epoch_ids), digest), self.dist)
        self.log({"step": self.state.step, "epoch": self.state.epoch,
                  "rank_images": [n for n, _ in shares], "rank_ids_sha1": [d for _, d in shares]})

    def _validate_and_save(self) -> None:
        metrics = self.validate()
        ap = metrics.get(self.score_key)
        ap = -1.0 if ap is None else float(ap)
        self.log({"step": self.state.step, "epoch": self.state.epoch, "val": metrics})
        self.state.history.append({"step": self.state.step, self.score_key: ap})
        if ap > self.state.best_ap:
            self.state.best_ap = ap
            self.save("best.pt")
        self.save("last.pt")
        for hook in self.on_validate:
            hook(self)

    def summary(self) -> str:
        """What was trained, how long, how well, and where it is."""
        s = self.state
        lines = [f"trained {s.step} steps ({s.epoch} full epochs) of {self.cfg.model.name} at "
                 f"{self.cfg.model.image_size}px on {len(self.data.train)} images of "
                 f"{len(self.taxset.taxonomies)} taxonomies (taxonomy mask "
                 f"{'on' if self.cfg.run.taxonomy_mask else 'OFF'})",
                 f"best federated val AP {s.best_ap:.4f}; checkpoints in {self.out} "
                 f"(last.pt, best.pt)"]
        if self.last_eval is not None:
            lines.append(self.last_eval.format_table())
        return "\n".join(lines)
