"""Typed training configuration, filled from defaults < YAML file < command line.

One dataclass per concern; ``TrainConfig`` groups them. Every field becomes a
``--section.field`` style flag (plus short aliases for the common ones), and a
YAML file given with ``--config`` may set any of them with the same nesting::

    model: {name: efficientdet_d0, image_size: 256}
    optim: {lr: 0.01, epochs: 20}

The resolved config is written to the run folder and into every checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints

import yaml

from datasets.split import SplitConfig
from datasets.transforms import AugmentConfig
from detection.anchors.labeler import LabelerConfig
from detection.model.build import ModelConfig
from losses import DetectionLossConfig
from supertax.errors import ConfigError, InputNotFoundError


@dataclass
class DataConfig:
    taxonomies: list[str] = field(default_factory=lambda: ["taxonomies/driving"])
    workers: int = 2
    label_in_workers: bool = True   # anchor labeling in data-loader workers (else on the device)
    allow_unmapped: bool = False

    def __post_init__(self) -> None:
        _check_ranges({"workers": (self.workers, 0, None)})


@dataclass
class OptimConfig:
    optimizer: str = "adamw"        # adamw | sgd
    lr: float = 1e-3
    weight_decay: float = 1e-4
    momentum: float = 0.9           # sgd only
    batch_size: int = 8
    epochs: int = 300
    steps: int = 0                  # 0: no step limit; otherwise stop at whichever ends first
    warmup_steps: int = 100
    min_lr_ratio: float = 0.01      # cosine decays to lr * min_lr_ratio
    clip_grad: float = 10.0         # max gradient norm, 0 to disable
    ema_decay: float = 0.999        # 0 to disable
    amp: bool = True                # mixed precision on CUDA (ignored on CPU)

    def __post_init__(self) -> None:
        _check_ranges({"batch_size": (self.batch_size, 1, None), "epochs": (self.epochs, 1, None),
                       "steps": (self.steps, 0, None), "warmup_steps": (self.warmup_steps, 0, None),
                       "lr": (self.lr, 0.0, None), "weight_decay": (self.weight_decay, 0.0, None),
                       "min_lr_ratio": (self.min_lr_ratio, 0.0, 1.0),
                       "clip_grad": (self.clip_grad, 0.0, None),
                       "ema_decay": (self.ema_decay, 0.0, 1.0)})
        if self.lr == 0.0 or self.ema_decay == 1.0:
            raise ConfigError(f"lr must be > 0 and ema_decay < 1, got {self.lr}, {self.ema_decay}")


@dataclass
class RunConfig:
    output: str = "runs/exp"
    device: str = "auto"            # auto | cpu | cuda | cuda:N
    seed: int = 0
    val_every: int = 0              # validate every N steps (0: at the end of each epoch)
    log_every: int = 10
    taxonomy_mask: bool = True      # False = --no-taxonomy-mask: the plain merged baseline
    resume: str | None = None       # a checkpoint (e.g. runs/exp/last.pt) to continue exactly
    init_checkpoint: str | None = None  # model weights to start from (same taxonomy hash)
    sync_bn: bool = False
    progress: bool = True
    overwrite: bool = False         # replace a run already in ``output`` (else refused)

    def __post_init__(self) -> None:
        _check_ranges({"val_every": (self.val_every, 0, None),
                       "log_every": (self.log_every, 1, None)})


def _check_ranges(values: dict[str, tuple[Any, Any, Any]]) -> None:
    """``ConfigError`` for the first ``name: (value, lo, hi)`` outside [lo, hi] (None: open)."""
    for name, (value, lo, hi) in values.items():
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise ConfigError(f"{name} must be {bounds}, got {value}")


@dataclass
class TrainConfig:
    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    labeler: LabelerConfig = field(default_factory=LabelerConfig)
    loss: DetectionLossConfig = field(default_factory=DetectionLossConfig)
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

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict, where: str = "config") -> "TrainConfig":
        return _build(cls, d, where)


# Short flags for what users type most; everything else is --section.field.
ALIASES = {
    "taxonomies": "data.taxonomies", "output": "run.output", "model": "model.name",
    "image-size": "model.image_size", "batch-size": "optim.batch_size", "epochs": "optim.epochs",
    "steps": "optim.steps", "lr": "optim.lr", "device": "run.device", "seed": "run.seed",
    "resume": "run.resume", "workers": "data.workers", "val-every": "run.val_every",
    "init-checkpoint": "run.init_checkpoint", "pretrained-backbone": "model.pretrained_backbone",
}


def _build(cls: type, d: dict, where: str) -> Any:
    """Dataclass ``cls`` from a (partial) nested dict; unknown keys are an error naming them."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(d).__name__}")
    hints, names = get_type_hints(cls), {f.name for f in fields(cls)}
    unknown = sorted(set(d) - names)
    if unknown:
        raise ConfigError(f"{where}: unknown key(s) {unknown}; known: {sorted(names)}")
    kwargs = {}
    for key, value in d.items():
        if dataclasses.is_dataclass(hints[key]):
            kwargs[key] = _build(hints[key], value, f"{where}.{key}")
        else:
            kwargs[key] = coerce(value, hints[key], f"{where}.{key}")
    try:
        return cls(**kwargs)
    except ValueError as exc:  # a section's own checks (ranges, choices)
        raise ConfigError(f"{where}: {exc}") from None


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
            return float(value)
    elif t is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
    elif isinstance(t, type):
        if isinstance(value, t):
            return value
    else:
        return value
    raise ConfigError(f"{where}: expected {_type_name(t)}, got {value!r}")


def _type_name(t: Any) -> str:
    if get_origin(t) is Literal:
        return "one of " + ", ".join(map(repr, get_args(t)))
    return getattr(t, "__name__", None) if get_origin(t) is None else str(t)


def _leaves(cls: type, prefix: str = ""):
    """(dotted name, type) for every scalar field of a nested dataclass."""
    for f in fields(cls):
        t = get_type_hints(cls)[f.name]
        if dataclasses.is_dataclass(t):
            yield from _leaves(t, f"{prefix}{f.name}.")
        else:
            yield f"{prefix}{f.name}", t


def _parse_value(text: str, t: Any) -> Any:
    """A command-line string as the field's type (YAML syntax: ``null``, ``true``, ``[a, b]``).

    String fields take the text as it is (``--output 2024`` is the folder "2024"); a value
    of the wrong type is a usage error (argparse exits with status 2).
    """
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    is_str = t is str or (get_origin(t) in (Union, types.UnionType) and str in get_args(t))
    if is_str and not (value is None and t is not str):
        value = text
    try:
        return coerce(value, t, "value")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("value: ")) from None


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """One flag per config field (``--optim.lr``), the aliases, ``--config`` and the mask switch."""
    parser.add_argument("--config", help="YAML file with any of the options below")
    reverse = {v: k for k, v in ALIASES.items()}
    for name, t in _leaves(TrainConfig):
        flags = [f"--{name}"] + ([f"--{reverse[name]}"] if name in reverse else [])
        if name == "data.taxonomies":
            parser.add_argument(*flags, dest=name, nargs="+", default=None, metavar="PATH")
        else:
            parser.add_argument(*flags, dest=name, default=None, metavar=_metavar(t),
                                type=lambda s, t=t: _parse_value(s, t))
    parser.add_argument("--overwrite", dest="run.overwrite", action="store_const", const=True,
                        default=None, help="replace the run already in --output (its last.pt, "
                        "best.pt, metrics, config); without it such a folder is refused")
    parser.add_argument("--no-taxonomy-mask", dest="run.taxonomy_mask", action="store_const",
                        const=False, default=None,
                        help="train on the plain merged dataset (the naive baseline)")


def _metavar(t: Any) -> str:
    return {int: "N", float: "X", bool: "BOOL"}.get(t, "VALUE")


def resolve(args: argparse.Namespace) -> TrainConfig:
    """Defaults < YAML (``--config``) < flags given on the command line."""
    tree: dict = {}
    if args.config:
        loaded = _read_yaml(Path(args.config)) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{args.config}: expected a mapping of config sections")
        tree = loaded
    for name, value in vars(args).items():
        if "." in name and value is not None:
            section, key = name.split(".", 1)
            tree.setdefault(section, {})[key] = value
    return TrainConfig.from_dict(tree, where=args.config or "config")


def _read_yaml(path: Path) -> Any:
    """A ``--config`` file parsed safely; a clear ``ConfigError`` naming it when unreadable."""
    try:
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputNotFoundError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
