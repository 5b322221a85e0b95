"""The task-agnostic training loop: ``TrainerBase``, its state and its hooks.

A task subclasses ``TrainerBase`` and, in its ``__init__`` after ``super().__init__(cfg)``
(config, device, seeds, the run folder's check), builds ``taxset``, ``data`` (``train`` /
``val`` datasets with ``samples``, ``report``, ``steps_per_epoch``, ``train_loader(epoch)``,
``val_loader(rank, world)``), ``model``, ``bench`` (``forward(batch, teacher=None) ->
{"loss", ...}``) and ``train_module``, then calls ``start_loop(task_hooks)``. It supplies
``validate``, ``summary``, ``model_description``, ``warm_start`` and
``warn_before_training``; the loop, optimizer, warm-up + cosine schedule, EMA, exact resume,
checkpoints, ``metrics.jsonl``, TensorBoard and ``curves.png`` are the engine's
(``taxdet.detection.engine.hooks``).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from timm.utils.model_ema import ModelEmaV3

from taxdet.core.errors import ConfigError
from taxdet.detection.engine import checkpoint, distributed, run_folder
from taxdet.detection.engine.curves import CurvesHook
from taxdet.detection.engine.hooks import (
    Checkpointer,
    EmaUpdate,
    HookBase,
    MetricLogger,
    ValidationSchedule,
)
from taxdet.detection.engine.progress import Progress
from taxdet.detection.engine.seeding import seed_everything
from taxdet.detection.engine.tensorboard_hook import FOLDER, TensorBoardHook, tensorboard_available
from taxdet.detection.engine.train_step import (
    NonFiniteLossError,
    effective_warmup,
    to_device,
    train_step,
    warmup_cosine,
)
from taxdet.supertax import TaxonomySet

logger = logging.getLogger(__name__)


class TaskSplit(Protocol):
    """A split of a task's data, as the loop uses it."""

    @property
    def samples(self) -> list[Any]: ...


class TaskData(Protocol):
    """What the loop uses of a task's ``data`` (the detector's ``TrainData``, the classifier's
    ``ClassifierData``)."""

    @property
    def train(self) -> TaskSplit: ...

    @property
    def val(self) -> TaskSplit: ...

    @property
    def report(self) -> dict[str, Any]: ...

    @property
    def steps_per_epoch(self) -> int: ...

    def train_loader(self, epoch: int) -> Iterable[dict[str, Any]]: ...


@dataclass
class TrainState:
    step: int = 0                 # optimizer steps done
    epoch: int = 0                # current epoch
    batch_in_epoch: int = 0       # batches of ``epoch`` already trained
    best_metric: float = -1.0     # the best validation ``metric`` so far (picks best.pt)
    metric: str = ""              # its name: the detector's "AP", the classifier's "accuracy"
    history: list[dict[str, Any]] = field(default_factory=list)
    train_seconds: float = 0.0    # wall time in training steps (data waits in, validation out)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainState:
        """The state a checkpoint stored; older checkpoints named ``best_metric`` ``best_ap``
        (also the classifier's accuracy)."""
        if not isinstance(d, dict):
            raise TypeError(f"state must be a mapping, got {type(d).__name__}")
        d = dict(d)
        if "best_ap" in d:
            d.setdefault("best_metric", d.pop("best_ap"))
        state = cls(**d)
        for name, kind in STATE_TYPES.items():
            value = getattr(state, name)
            if not _is_a(value, kind) or (kind is int and value < 0):
                raise ValueError(f"state.{name} must be {STATE_TYPE_NAMES[kind]}, got {value!r}")
        return state


STATE_TYPES: dict[str, type] = {"step": int, "epoch": int, "batch_in_epoch": int,
                                "best_metric": float, "metric": str, "history": list,
                                "train_seconds": float}
STATE_TYPE_NAMES = {int: "a count (an integer >= 0)", float: "a number", str: "a string",
                    list: "a list"}


def _is_a(value: Any, kind: type) -> bool:
    """``isinstance``, where a bool is no number and an int is also a float."""
    if isinstance(value, bool):
        return False
    return isinstance(value, (int, float) if kind is float else kind)


RESUME_KEYS = checkpoint.RESUME_KEYS

# settings that do not change what is trained: a resumed run may differ in these
RESUME_FREE = {"run.resume", "run.output", "run.progress", "run.log_every", "run.val_every",
               "run.init_checkpoint", "run.overwrite", "run.tensorboard"}


def config_changes(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    """``"optim.steps: 5 -> 10"`` for every leaf of two config trees (``to_dict()``) that
    differs, except ``RESUME_FREE``."""
    out: list[str] = []
    for key in sorted(set(old) | set(new)):
        a, b, name = old.get(key), new.get(key), f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            out += config_changes(a, b, f"{name}.")
        elif name not in RESUME_FREE and a != b and not (
                isinstance(a, (list, tuple)) and isinstance(b, (list, tuple))
                and list(a) == list(b)):
            out.append(f"{name}: {a!r} -> {b!r}")
    return out


class TrainerBase:
    """The loop over a task's parts (module docstring)."""

    metric = ""                 # the validation metric that picks best.pt
    task: str | None = None     # checkpoint["task"] (None: no such key, the detector's)
    # what the task's ``__init__`` builds (module docstring)
    taxset: TaxonomySet
    data: TaskData
    model: torch.nn.Module
    bench: torch.nn.Module      # ``forward(batch, teacher=None) -> {"loss", ...}``
    train_module: torch.nn.Module   # ``bench``, or its DistributedDataParallel wrapper

    def __init__(self, cfg: Any):
        """Config, device, seeds, and the run folder's check (nothing written yet)."""
        self.cfg = cfg
        self.dist, self.device = distributed.init(cfg.run.device)
        seed_everything(cfg.run.seed)
        self.out = Path(cfg.run.output)
        run_folder.check_run_folder(self.out, cfg.run.resume, cfg.run.overwrite,
                                    cfg.run.init_checkpoint)
        self._folder_started = False
        # init_mapping.json: how the classes matched
        self.init_mapping: dict[str, Any] | None = None
        self.teacher: torch.nn.Module | None = None   # passed to the bench at each step
        self.hooks: list[HookBase] = []
        self.last_eval: Any = None      # the task's last evaluation result
        self.last_metrics: dict[str, Any] = {}
        self.improved = False
        self.step_record: dict[str, Any] = {}
        # called with the trainer after every validation (e.g. a test-split evaluation)
        self.on_validate: list[Callable[[TrainerBase], None]] = []

    # -- what a task supplies -------------------------------------------------------------------
    def validate(self) -> dict[str, Any]:
        """The validation metrics (a dict holding ``self.metric``), the same on every rank."""
        raise NotImplementedError

    def summary(self) -> str:
        """What was trained, how long, how well, and where it is."""
        raise NotImplementedError

    def model_description(self) -> str:
        """The model in words, for errors ("efficientdet_d0 at 128px with 7 classes")."""
        raise NotImplementedError

    def warm_start(self, ckpt: dict[str, Any], weights: dict[str, Any], path: str
                   ) -> tuple[dict[str, Any], dict[str, Any], str]:
        """``(weights for self.model, init_mapping.json record, summary)`` from a checkpoint of
        other taxonomies, its classes matched by name."""
        raise NotImplementedError

    def warn_before_training(self) -> None:
        """Log warnings about the data, once before the first step."""
        raise NotImplementedError

    # -- set-up ---------------------------------------------------------------------------------
    def place_model(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` on the device (channels-last with ``run.channels_last``)."""
        model = model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.cfg.run.channels_last \
            else model

    def init_weights(self) -> None:
        """``run.init_checkpoint``'s weights into ``self.model``, when set."""
        if self.cfg.run.init_checkpoint:
            self._init_from(self.cfg.run.init_checkpoint)

    def start_loop(self, task_hooks: Sequence[HookBase] = ()) -> None:
        """Optimizer, schedule, scaler, EMA, loop state and hooks for ``self.model`` (then
        resume). Hooks run as: EMA, metric log, validation schedule, checkpoints, the task's,
        TensorBoard, curves."""
        cfg, o = self.cfg, self.cfg.optim
        self.optimizer = self._optimizer()
        self.total_steps = self._total_steps()
        self.warmup_steps, self._warmup_warning = effective_warmup(o.warmup_steps,
                                                                   self.total_steps, o.lr)
        self.scheduler = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer,
            lambda s: warmup_cosine(s, self.total_steps, self.warmup_steps, o.min_lr_ratio))
        self.scaler = torch.amp.GradScaler(self.device.type,
                                           enabled=o.amp and self.device.type == "cuda")
        self.ema: ModelEmaV3 | None = (ModelEmaV3(self.model, decay=o.ema_decay, use_warmup=True)
                    if o.ema_decay > 0 else None)
        self.state = TrainState(metric=self.metric)
        self._epoch_ids: list[int] = []   # image ids this rank trained in the current epoch
        self.register_hooks([EmaUpdate()] * (self.ema is not None)
                            + [MetricLogger(), ValidationSchedule(), Checkpointer()]
                            + list(task_hooks))
        if self.dist.is_main and cfg.run.tensorboard and tensorboard_available():
            self.register_hooks([TensorBoardHook(self.out / FOLDER)])
        self.register_hooks([CurvesHook()])
        if cfg.run.resume:
            self._resume(cfg.run.resume)

    def register_hooks(self, hooks: list[HookBase]) -> None:
        for hook in hooks:
            hook.trainer = self
            self.hooks.append(hook)

    def call_hooks(self, stage: str) -> None:
        for hook in self.hooks:
            getattr(hook, stage)()

    def _ddp_ids(self) -> list[int | None] | None:
        return [self.device.index] if self.device.type == "cuda" else None

    def _optimizer(self) -> torch.optim.Optimizer:
        o = self.cfg.optim
        decay: list[torch.nn.Parameter] = []
        no_decay: list[torch.nn.Parameter] = []
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
        by_epochs: int = self.cfg.optim.epochs * self.data.steps_per_epoch
        steps: int = self.cfg.optim.steps
        return min(by_epochs, steps) if steps > 0 else by_epochs

    # -- weights from files ---------------------------------------------------------------------
    def _load_weights(self, weights: dict[str, Any], path: str, what: str) -> None:
        """``self.model.load_state_dict(weights)``; a ``CheckpointError`` naming the file and
        the first misfitting keys when they do not fit."""
        misfit = checkpoint.weights_misfit(self.model, weights)
        if misfit:
            raise checkpoint.CheckpointError(
                f"{path}: {what} do not fit {self.model_description()}: {'; '.join(misfit)}")
        self.model.load_state_dict(weights)

    def _init_from(self, path: str) -> None:
        """Start from the weights of a checkpoint, or of a bare state dict (no digest needed;
        still read without running code from it). A checkpoint of other taxonomies is matched
        by class name (the task's ``warm_start``); the mapping is logged and kept for
        ``init_mapping.json``."""
        ckpt = checkpoint.load(path, bare=True)
        weights = ckpt.get("model", ckpt)
        if "taxonomy_hash" in ckpt and ckpt["taxonomy_hash"] != self.taxset.hash:
            if "taxonomies" not in ckpt:
                checkpoint.check_taxonomy(ckpt, self.taxset, path)  # names what it cannot read
            weights, self.init_mapping, summary = self.warm_start(ckpt, weights, path)
            if self.dist.is_main:
                logger.info("init-checkpoint %s: trained for other taxonomies; classes matched "
                            "by name: %s (details: %s)", path, summary,
                            self.out / run_folder.INIT_MAPPING)
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
            logger.warning("%s: resuming with other settings than the checkpoint's, so the run "
                           "will not continue exactly: %s", path, "; ".join(changed))
        self._load_weights(ckpt["model"], path, "the weights")
        try:
            self._restore(ckpt)
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
            raise checkpoint.CheckpointError(
                f"{path}: cannot resume from it ({type(exc).__name__}: {exc})") from None

    def _restore(self, ckpt: dict[str, Any]) -> None:
        """EMA, optimizer, schedule, scaler, loop state and RNGs of a (verified) checkpoint."""
        if self.ema is not None and ckpt.get("ema") is not None:
            self.ema.load_state_dict(ckpt["ema"])
        self.optimizer.load_state_dict(ckpt["optimizer"])
        self.scheduler.load_state_dict(ckpt["scheduler"])
        self.scaler.load_state_dict(ckpt["scaler"])
        self.state = TrainState.from_dict(ckpt["state"])
        self.state.metric = self.state.metric or self.metric
        checkpoint.set_rng_state(ckpt["rng"])

    # -- outputs -------------------------------------------------------------------------------
    def checkpoint_state(self) -> dict[str, Any]:
        """What ``save`` writes (``taxdet.detection.engine.checkpoint``)."""
        return {"model": self.model.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "optimizer": self.optimizer.state_dict(), "scheduler": self.scheduler.state_dict(),
                "scaler": self.scaler.state_dict(), "state": vars(self.state).copy(),
                "rng": checkpoint.rng_state(), "config": self.cfg.to_dict(),
                "taxonomies": self.taxset.to_dict(), "taxonomy_hash": self.taxset.hash,
                **({"task": self.task} if self.task else {})}

    def save(self, name: str) -> None:
        if self.dist.is_main:
            checkpoint.save_atomic(self.checkpoint_state(), self.out / name)

    def log(self, record: dict[str, Any]) -> None:
        if self.dist.is_main:
            with open(self.out / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def start_folder(self) -> None:
        """Create the run folder (removing the old run's files with ``--overwrite``), once."""
        if self.dist.is_main and not self._folder_started:
            run_folder.start_run_folder(self.out, self.cfg.run.overwrite)
            self._folder_started = True

    def write_run_files(self) -> None:
        if not self.dist.is_main:
            return
        self.start_folder()
        run_folder.write_run_files(self.out, self.cfg.to_dict(), self.taxset.hash,
                                   self.taxset.to_dict(), self.data.report)
        run_folder.write_split(self.out, self.data.train.samples, self.data.val.samples,
                               self.cfg.split)
        if self.init_mapping is not None:
            run_folder.write_init_mapping(self.out, self.init_mapping)

    def validate_and_save(self) -> None:
        """Validate, log the metrics, track the best ``metric``, then the ``after_validate``
        hooks (checkpoints) and the ``on_validate`` callbacks."""
        metrics = self.validate()
        value = metrics.get(self.metric)
        value = -1.0 if value is None else float(value)
        s = self.state
        self.log({"step": s.step, "epoch": s.epoch, "val": metrics})
        s.history.append({"step": s.step, self.metric: value})
        self.improved, self.last_metrics = value > s.best_metric, metrics
        if self.improved:
            s.best_metric = value
        self.call_hooks("after_validate")
        for callback in self.on_validate:
            callback(self)

    # -- the loop ------------------------------------------------------------------------------
    def fit(self) -> TrainState:
        """Train until the step budget is spent; the hooks validate, checkpoint and log."""
        self.write_run_files()
        if self.dist.is_main and not self.state.step:
            self.warn_before_training()
            if self._warmup_warning:
                logger.warning(self._warmup_warning)
        self.call_hooks("before_train")
        s = self.state
        progress = Progress(self.total_steps, s.step,
                            enabled=self.cfg.run.progress and self.dist.is_main)
        try:
            while s.step < self.total_steps:
                self._train_epoch(progress)
                self._log_rank_shares()
                if s.batch_in_epoch >= self.data.steps_per_epoch:
                    s.epoch, s.batch_in_epoch = s.epoch + 1, 0
                    self.call_hooks("after_epoch")
        finally:
            progress.close()
        self.call_hooks("after_train")
        distributed.barrier(self.dist)
        return s

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
            self.call_hooks("before_step")
            try:  # steps are numbered from 1 in messages, as in metrics.jsonl
                losses = train_step(self.train_module, batch, self.optimizer, self.scaler,
                                    cfg.optim.clip_grad, s.step + 1, teacher=self.teacher)
            except NonFiniteLossError as exc:
                self._stop_non_finite(exc)
            lr = self.optimizer.param_groups[0]["lr"]  # the rate this step used
            self.scheduler.step()
            s.step, s.batch_in_epoch = s.step + 1, i + 1
            self._epoch_ids += batch["image_id"].tolist()
            seen += batch["image"].shape[0] * self.dist.world_size
            rate = seen / max(time.perf_counter() - t0, 1e-9)
            progress.update(losses["loss"], rate)
            self.step_record = {"step": s.step, "epoch": s.epoch, **losses,
                                "lr": lr, "images_per_s": round(rate, 2)}
            s.train_seconds += time.perf_counter() - tick
            self.call_hooks("after_step")   # EMA, log, validation (its time not counted)
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
