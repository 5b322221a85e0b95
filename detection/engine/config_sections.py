"""Typed configs made of sections, filled from defaults < YAML file < command line.

One dataclass per concern; a task's config (the detector's ``TrainConfig`` in
``taxdet.detection.model.detector_config``, the classifier's ``ClassifierConfig``) groups them
as a ``Sections``. Every field becomes a ``--section.field`` flag
(``taxdet.detection.engine.command_line``), and a YAML file given with ``--config`` may set any
of them with the same nesting::

    model: {name: efficientdet_d0, image_size: 256}
    optim: {lr: 0.01, epochs: 20}

The resolved config is written to the run folder and into every checkpoint. The sections every
task shares live here: ``OptimConfig`` (optimizer, schedule, EMA, step budget) and ``RunConfig``
(run folder, device, seed, validation, logging, resume).

Each field carries its ``--help`` text (``taxdet.core.config_field.config_field``), next to its
type and default: that is the only place either is written. Torch-free, so a training tool's
``--help`` imports no torch.
"""

from __future__ import annotations

import dataclasses
import math
import types
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, Literal, Union, get_args, get_origin, get_type_hints

from taxdet.core.config_field import config_field
from taxdet.core.errors import ConfigError
from taxdet.core.names import did_you_mean

if TYPE_CHECKING:  # for mypy every config of sections is a dataclass; at run time a plain class
    from _typeshed import DataclassInstance as _Dataclass
else:
    _Dataclass = object


@dataclass
class OptimConfig:
    optimizer: str = config_field("adamw", "adamw or sgd")
    lr: float = config_field(
        1e-3, "peak learning rate, reached after the warm-up, then decayed along a cosine to "
        "lr x min_lr_ratio at the last step")
    weight_decay: float = config_field(1e-4, "weight decay")
    momentum: float = config_field(0.9, "momentum (sgd only)")
    batch_size: int = config_field(
        8, "images per step and per process (torchrun with P processes trains on P x N images "
        "per step); --workers load them")
    epochs: int = config_field(
        300, "passes over the training images; training stops at whichever of --epochs and "
        "--steps ends first")
    steps: int = config_field(
        0, "stop after N optimizer steps, even mid-epoch (0: no step limit); see --val-every "
        "for when such a run validates")
    warmup_steps: int = config_field(
        100, "linear learning-rate warm-up over the first N steps; a run shorter than that "
        "warms up over a quarter of its steps instead (with a warning)")
    min_lr_ratio: float = config_field(0.01, "the cosine schedule ends at lr x this, in [0, 1]")
    clip_grad: float = config_field(10.0, "max gradient norm (0: no clipping)")
    ema_decay: float = config_field(
        0.999, "decay of the weights' moving average, the weights that validation scores (0: "
        "no EMA, the raw weights)")
    amp: bool = config_field(True, "mixed precision on CUDA (ignored on the CPU)")

    def __post_init__(self) -> None:
        check_ranges({"batch_size": (self.batch_size, 1, None), "epochs": (self.epochs, 1, None),
                       "steps": (self.steps, 0, None), "warmup_steps": (self.warmup_steps, 0, None),
                       "lr": (self.lr, 0.0, None), "weight_decay": (self.weight_decay, 0.0, None),
                       "min_lr_ratio": (self.min_lr_ratio, 0.0, 1.0),
                       "clip_grad": (self.clip_grad, 0.0, None),
                       "ema_decay": (self.ema_decay, 0.0, 1.0)})
        if self.lr == 0.0 or self.ema_decay == 1.0:
            raise ConfigError(f"lr must be > 0 and ema_decay < 1, got {self.lr}, {self.ema_decay}")


@dataclass
class RunConfig:
    output: str = config_field("runs/exp", "run folder: config.yaml, metrics.jsonl, last.pt, "
                               "best.pt")
    device: str = config_field("auto", "auto | cpu | cuda | cuda:N (auto: CUDA when available)")
    seed: int = config_field(0, "seeds the model's initialisation, the sampler and the "
                             "augmentation")
    val_every: int = config_field(
        0, "validate and checkpoint every N steps; 0: at each epoch's end and after the last "
        "step, so a --steps run shorter than an epoch validates once")
    log_every: int = config_field(10, "write a metrics.jsonl line every N steps")
    taxonomy_mask: bool = config_field(
        True, "Taxonomy Loss Masking: no loss on the classes an image's customer does not "
        "label (false: the plain merged baseline)")
    resume: str | None = config_field(
        None, "a checkpoint (e.g. runs/exp/last.pt) to continue exactly: its config, "
        "taxonomies, data and run folder are the defaults; options given beside it override "
        "them (with a warning when that changes what is trained)")
    init_checkpoint: str | None = config_field(
        None, "model weights to start from; a checkpoint of other taxonomies is matched by "
        "class name (kept classes keep their head columns, new ones start fresh, the mapping "
        "goes to init_mapping.json); optimizer and step count start afresh")
    sync_bn: bool = config_field(False, "synchronise batch norm across processes (torchrun "
                                 "only)")
    progress: bool = config_field(True, "show a progress bar")
    channels_last: bool = config_field(False, "keep the model and the images in channels-last "
                                       "memory layout (faster convolutions on some CPUs and "
                                       "GPUs; benchmarks/bench_train_step.py --channels-last "
                                       "measures it)")
    overwrite: bool = config_field(False, "replace a run already in --output (else refused); "
                                   "same as --overwrite")
    tensorboard: bool = config_field(
        True, "write TensorBoard event files (losses, learning rate, validation metrics) to "
        "<run folder>/tensorboard when the tensorboard package is installed; false: none "
        "(curves.png is written either way)")
    config_files: list[str] = config_field(
        [], "the --config files this config was merged from, in the order given (later keys "
        "win); filled in from --config, recorded in config.yaml and the checkpoints")

    def __post_init__(self) -> None:
        check_ranges({"val_every": (self.val_every, 0, None),
                       "log_every": (self.log_every, 1, None)})


def check_ranges(values: dict[str, tuple[Any, Any, Any]]) -> None:
    """``ConfigError`` for the first ``name: (value, lo, hi)`` outside [lo, hi] (None: open);
    NaN and infinities are outside every range."""
    for name, (value, lo, hi) in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ConfigError(f"{name} must be a finite number, got {value}")
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise ConfigError(f"{name} must be {bounds}, got {value}")


class Sections(_Dataclass):
    """A config made of sections (one dataclass per concern): its plain-data form and back.
    The detector's ``TrainConfig`` and the classifier's ``ClassifierConfig`` are such configs."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "config") -> Any:
        """The config of a (partial) nested dict; ``ConfigError`` naming unknown keys."""
        return build_config(cls, d, where)


def build_config(cls: type, d: dict[str, Any], where: str) -> Any:
    """Dataclass ``cls`` from a (partial) nested dict; unknown keys are an error naming them.
    Any config of sections (``TrainConfig``, the classifier's ``ClassifierConfig``) builds so."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(d).__name__}")
    hints, names = get_type_hints(cls), {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names, key=str)
    if unknown:
        advice = "".join(_suggestion(cls, key) for key in unknown)
        raise ConfigError(f"{where}: unknown key(s) {unknown}{advice}; known: {sorted(names)}")
    kwargs = {}
    for key, value in d.items():
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = build_config(hints[key], value, f"{where}.{key}")
        else:
            kwargs[key] = coerce(value, hints[key], f"{where}.{key}")
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a section's own checks (ranges, choices)
        raise ConfigError(f"{where}: {exc}") from None


def _suggestion(cls: type, key: Any) -> str:
    """``"; did you mean 'lr'?"`` for an unknown key of section ``cls`` (case-insensitive); at
    the top level also a field of a section (``lr`` -> ``optim.lr``)."""
    names = [f.name for f in fields(cls)]
    hint = did_you_mean(key, names)
    hints = get_type_hints(cls)
    sectioned = all(dataclasses.is_dataclass(hints[n]) for n in names)  # a whole config
    if hint or not sectioned or not isinstance(key, str):
        return hint
    dotted = [f"{s}.{f.name}" for s in names for f in fields(hints[s])]
    exact = [d for d in dotted if d.split(".", 1)[1].lower() == key.lower()]
    return f"; did you mean {exact[0]!r}?" if exact else did_you_mean(key, dotted)


def coerce(value: Any, t: Any, where: str) -> Any:
    """``value`` (from YAML or a flag) as field type ``t``; ``ValueError`` naming ``where``.

    int -> float is allowed, lists become tuples for tuple fields, a single string
    becomes a one-item list for ``list[str]`` fields; anything else must match.
    """
    origin, args = get_origin(t), get_args(t)
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        (t,) = [a for a in args if a is not type(None)]
        return coerce(value, t, where)
    if origin is Literal:
        if value in args:
            return value
    elif origin is list:
        items = [value] if isinstance(value, str) else value
        if isinstance(items, (list, tuple)):
            return [coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(items)]
    elif origin is tuple:
        if isinstance(value, (list, tuple)) and len(value) == len(args):
            return tuple(coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args)))
    elif t is float:
        if isinstance(value, str):  # YAML 1.1 reads 1e-3 (no dot) as a string
            try:
                value = float(value)
            except ValueError:
                pass
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return _finite(value, where)
    elif t is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(t, type):
        if isinstance(value, t):
            return value
    else:
        return value
    raise ConfigError(f"{where}: expected {_type_name(t)}, got {value!r}")


def _finite(value: float, where: str) -> float:
    """``value`` as a float, or ``ConfigError``: NaN and infinities are no setting's value."""
    try:
        number = float(value)
    except OverflowError:  # an int beyond float
        number = math.inf
    if not math.isfinite(number):
        raise ConfigError(f"{where}: expected a finite number, got {value!r}")
    return number


def _type_name(t: Any) -> str:
    if get_origin(t) is Literal:
        return "one of " + ", ".join(map(repr, get_args(t)))
    return str(getattr(t, "__name__", None)) if get_origin(t) is None else str(t)
