"""Typed training configuration, filled from defaults < YAML file < command line.

One dataclass per concern; ``TrainConfig`` groups them. Every field becomes a
``--section.field`` style flag (plus short aliases for the common ones), and a
YAML file given with ``--config`` may set any of them with the same nesting::

    model: {name: efficientdet_d0, image_size: 256}
    optim: {lr: 0.01, epochs: 20}

The resolved config is written to the run folder and into every checkpoint.

Building the parser (``--help``) imports no torch, effdet or albumentations: the sections
defined in modules that import them are described here by ``_HEAVY_FIELDS`` (checked against
the classes by the tests) and their classes are imported only to build a ``TrainConfig``.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import (TYPE_CHECKING, Any, Literal, Union, get_args, get_origin,
                    get_type_hints)

import yaml

from datasets.split import SplitConfig
from supertax.errors import ConfigError, InputNotFoundError

if TYPE_CHECKING:  # imported on first use by _section_classes (they import torch)
    from datasets.transforms import AugmentConfig
    from detection.anchors.labeler import LabelerConfig
    from detection.model.build import ModelConfig
    from losses import DetectionLossConfig


def _opt(default: Any, help: str) -> Any:
    """A dataclass field with its ``--help`` text (a list default is copied per instance)."""
    if isinstance(default, list):
        return field(default_factory=lambda: list(default), metadata={"help": help})
    return field(default=default, metadata={"help": help})


@dataclass
class DataConfig:
    taxonomies: list[str] = _opt(["taxonomies/driving"], "taxonomy YAML files or folders: a "
                                 "super-taxonomy and the customer taxonomies whose datasets "
                                 "are merged and trained on")
    super_taxonomy: str | None = _opt(None, "name of the super-taxonomy to train; needed when "
                                      "the taxonomy files hold several")
    workers: int = _opt(2, "data-loader processes per training process; they decode, augment "
                        "and (with label_in_workers) label the images of each batch of "
                        "--batch-size; 0 loads in the training process")
    label_in_workers: bool = _opt(True, "label anchors in the loader workers, one image at a "
                                  "time on the CPU (false: on the training device, per batch)")
    allow_unmapped: bool = _opt(False, "drop (and count) annotations whose category the "
                                "taxonomy does not name, instead of failing")

    def __post_init__(self) -> None:
        _check_ranges({"workers": (self.workers, 0, None)})


@dataclass
class OptimConfig:
    optimizer: str = _opt("adamw", "adamw or sgd")
    lr: float = _opt(1e-3, "peak learning rate, reached after the warm-up, then decayed along "
                     "a cosine to lr x min_lr_ratio at the last step")
    weight_decay: float = _opt(1e-4, "weight decay")
    momentum: float = _opt(0.9, "momentum (sgd only)")
    batch_size: int = _opt(8, "images per step and per process (torchrun with P processes "
                           "trains on P x N images per step); --workers load them")
    epochs: int = _opt(300, "passes over the training images; training stops at whichever of "
                       "--epochs and --steps ends first")
    steps: int = _opt(0, "stop after N optimizer steps, even mid-epoch (0: no step limit); "
                      "see --val-every for when such a run validates")
    warmup_steps: int = _opt(100, "linear learning-rate warm-up over the first N steps")
    min_lr_ratio: float = _opt(0.01, "the cosine schedule ends at lr x this, in [0, 1]")
    clip_grad: float = _opt(10.0, "max gradient norm (0: no clipping)")
    ema_decay: float = _opt(0.999, "decay of the weights' moving average, the weights that "
                            "validation scores (0: no EMA, the raw weights)")
    amp: bool = _opt(True, "mixed precision on CUDA (ignored on the CPU)")

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
    output: str = _opt("runs/exp", "run folder: config.yaml, metrics.jsonl, last.pt, best.pt")
    device: str = _opt("auto", "auto | cpu | cuda | cuda:N (auto: CUDA when available)")
    seed: int = _opt(0, "seeds the model's initialisation, the sampler and the augmentation")
    val_every: int = _opt(0, "validate and checkpoint every N steps; 0: at each epoch's end "
                          "and after the last step, so a --steps run shorter than an epoch "
                          "validates once")
    log_every: int = _opt(10, "write a metrics.jsonl line every N steps")
    taxonomy_mask: bool = _opt(True, "Taxonomy Loss Masking: no loss on the classes an image's "
                               "customer does not label (false: the plain merged baseline)")
    resume: str | None = _opt(None, "a checkpoint (e.g. runs/exp/last.pt) to continue exactly")
    init_checkpoint: str | None = _opt(None, "model weights to start from (same taxonomy hash); "
                                       "optimizer and step count start afresh")
    sync_bn: bool = _opt(False, "synchronise batch norm across processes (torchrun only)")
    progress: bool = _opt(True, "show a progress bar")
    overwrite: bool = _opt(False, "replace a run already in --output (else refused); "
                           "same as --overwrite")

    def __post_init__(self) -> None:
        _check_ranges({"val_every": (self.val_every, 0, None),
                       "log_every": (self.log_every, 1, None)})


def _check_ranges(values: dict[str, tuple[Any, Any, Any]]) -> None:
    """``ConfigError`` for the first ``name: (value, lo, hi)`` outside [lo, hi] (None: open)."""
    for name, (value, lo, hi) in values.items():
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            bounds = f">= {lo}" if hi is None else f"in [{lo}, {hi}]"
            raise ConfigError(f"{name} must be {bounds}, got {value}")


def _section_classes() -> dict[str, type]:
    """Every section class by name. Imports torch, effdet and albumentations: used to build a
    ``TrainConfig``, never to build the parser."""
    from datasets.transforms import AugmentConfig
    from detection.anchors.labeler import LabelerConfig
    from detection.model.build import ModelConfig
    from losses import DetectionLossConfig
    return {c.__name__: c for c in (ModelConfig, DataConfig, SplitConfig, AugmentConfig,
                                    LabelerConfig, DetectionLossConfig, OptimConfig, RunConfig)}


def _lazy_section(name: str) -> Any:
    """A field whose default is a fresh ``name`` section (its module imported on first use)."""
    return field(default_factory=lambda: _section_classes()[name]())


@dataclass
class TrainConfig:
    model: ModelConfig = _lazy_section("ModelConfig")
    data: DataConfig = field(default_factory=DataConfig)
    split: SplitConfig = field(default_factory=SplitConfig)
    augment: AugmentConfig = _lazy_section("AugmentConfig")
    labeler: LabelerConfig = _lazy_section("LabelerConfig")
    loss: DetectionLossConfig = _lazy_section("DetectionLossConfig")
    optim: OptimConfig = field(default_factory=OptimConfig)
    run: RunConfig = field(default_factory=RunConfig)

    def __post_init__(self) -> None:
        # One input size: the augmentation resizes and pads to the model's size.
        default = type(self.augment)().image_size
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
    "super-taxonomy": "data.super_taxonomy",
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
    "loss": "focal class loss + Huber box loss (the defaults are effdet's)",
}

# Help of the fields of sections defined outside this module ("section.field").
HELP = {
    "model.name": "effdet model name: efficientdet_d0 (smallest) ... efficientdet_d7, or "
                  "another of effdet's",
    "model.image_size": "square input side in pixels, a multiple of 128 (2**max_level); all "
                        "images are resized and padded to it, for training and validation "
                        "(augment.image_size follows it)",
    "model.pretrained_backbone": "local timm state dict for the backbone, else random "
                                 "initialisation; nothing is ever downloaded",
    "model.heads": "shared: one class / box head pair; per-taxonomy: one pair per taxonomy",
    "split.val_fraction": "share of the images that go to validation, in [0, 1]",
    "split.salt": "change it to draw a new, independent split",
    "split.by": "content: the image bytes' hash (a renamed or moved picture keeps its side); "
                "filename: the file's base name",
    "augment.image_size": "leave unset: it follows --model.image_size (another value is an error)",
    "augment.scale_jitter": "[lo, hi]: random factor on the fit-to-size scale",
    "augment.hflip_p": "probability of a horizontal flip",
    "augment.brightness": "colour jitter: largest relative brightness change",
    "augment.contrast": "colour jitter: largest relative contrast change",
    "augment.saturation": "colour jitter: largest relative saturation change",
    "augment.hue": "colour jitter: largest hue shift (fraction of the hue circle, <= 0.5)",
    "augment.color_p": "probability of the colour jitter",
    "augment.min_visibility": "fraction of a box's area that must stay in the image to keep it",
    "augment.min_area": "model-input pixels^2 a kept box needs",
    "labeler.pos_iou": "IoU at or above which an anchor is positive",
    "labeler.neg_iou": "IoU below which an anchor is negative; in between it is ignored",
    "labeler.force_match": "also make each box's best anchor positive (as effdet does)",
    "labeler.ignore_ioa": "a non-positive anchor with at least this fraction of its area inside "
                          "an ignore / crowd region is ignored",
    "labeler.block_elements": "speed / memory only: IoU values per labeling block (2**21 "
                              "float32 = 8 MiB)",
    "labeler.block_anchors": "speed / memory only: most anchors per labeling block",
    "loss.alpha": "focal loss: weight of the positives, in [0, 1]",
    "loss.gamma": "focal loss: focusing exponent, >= 0",
    "loss.delta": "Huber box loss: where it turns from quadratic to linear, > 0",
    "loss.box_loss_weight": "weight of the box loss against the class loss",
    "loss.label_smoothing": "class label smoothing, in [0, 1)",
    "loss.legacy_focal": "effdet's older focal implementation (same loss and gradient, "
                         "no label smoothing)",
}

# (name, type, default) of the sections whose modules import torch, effdet or albumentations,
# so that the parser is built without them; the tests check these against the classes.
_HEAVY_FIELDS: dict[str, tuple[tuple[str, Any, Any], ...]] = {
    "model": (("name", str, "efficientdet_d0"), ("image_size", int, 512),
              ("pretrained_backbone", str | None, None), ("heads", str, "shared")),
    "augment": (("image_size", int, 256), ("scale_jitter", tuple[float, float], (0.75, 1.25)),
                ("hflip_p", float, 0.5), ("brightness", float, 0.25), ("contrast", float, 0.25),
                ("saturation", float, 0.25), ("hue", float, 0.03), ("color_p", float, 0.8),
                ("min_visibility", float, 0.3), ("min_area", float, 4.0)),
    "labeler": (("pos_iou", float, 0.5), ("neg_iou", float, 0.4), ("force_match", bool, True),
                ("ignore_ioa", float, 0.5), ("block_elements", int, 1 << 21),
                ("block_anchors", int, 8192)),
    "loss": (("alpha", float, 0.25), ("gamma", float, 1.5), ("delta", float, 0.1),
             ("box_loss_weight", float, 50.0), ("label_smoothing", float, 0.0),
             ("legacy_focal", bool, False)),
}
_LIGHT_SECTIONS = {"data": DataConfig, "split": SplitConfig, "optim": OptimConfig,
                   "run": RunConfig}
_SHOWN_DEFAULT = {"augment.image_size": "--model.image_size"}
_METAVARS = {"data.super_taxonomy": "NAME", "model.name": "NAME", "run.output": "DIR",
             "run.resume": "CKPT", "run.init_checkpoint": "CKPT",
             "model.pretrained_backbone": "PATH", "augment.scale_jitter": "LO,HI",
             "model.heads": "{shared,per-taxonomy}", "optim.optimizer": "{adamw,sgd}"}


@dataclass(frozen=True)
class Option:
    """One ``--section.field`` flag: dotted name, field type, default and help text."""

    name: str
    type: Any
    default: Any
    help: str


def options() -> list[Option]:
    """Every config field, section by section in TrainConfig's order (imports no torch)."""
    out = []
    for section in fields(TrainConfig):
        if section.name in _HEAVY_FIELDS:
            found = [(n, t, d, None) for n, t, d in _HEAVY_FIELDS[section.name]]
        else:
            cls = _LIGHT_SECTIONS[section.name]
            hints = get_type_hints(cls)
            found = [(f.name, hints[f.name], _default(f), f.metadata.get("help"))
                     for f in fields(cls)]
        for name, t, default, text in found:
            key = f"{section.name}.{name}"
            out.append(Option(key, t, default, text or HELP.get(key, "")))
    return out


def _default(f: dataclasses.Field) -> Any:
    return f.default_factory() if f.default is dataclasses.MISSING else f.default


def _build(cls: type, d: dict, where: str) -> Any:
    """Dataclass ``cls`` from a (partial) nested dict; unknown keys are an error naming them."""
    if not isinstance(d, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(d).__name__}")
    hints, names = _hints(cls), {f.name for f in fields(cls)}
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


def _hints(cls: type) -> dict[str, Any]:
    """Field types of ``cls`` (for TrainConfig, its section classes are imported here)."""
    return get_type_hints(cls, localns=_section_classes() if cls is TrainConfig else None)


def _type_name(t: Any) -> str:
    if get_origin(t) is Literal:
        return "one of " + ", ".join(map(repr, get_args(t)))
    return getattr(t, "__name__", None) if get_origin(t) is None else str(t)


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
    """``--config``, then one group per section: a flag per field (``--optim.lr``), its alias
    (``--lr``), and in ``run`` the ``--overwrite`` and ``--no-taxonomy-mask`` switches.

    Every flag defaults to None (= not given), so ``resolve`` lets the YAML file fill it;
    the help shows the field's own default.
    """
    parser.add_argument("--config", metavar="YAML",
                        help="YAML file setting any option below, nested by section (optim: "
                        "{lr: 0.01}); flags override it, it overrides the defaults")
    reverse = {v: k for k, v in ALIASES.items()}
    groups = {name: parser.add_argument_group(f"{name} (--{name}.*)", text)
              for name, text in SECTIONS.items()}
    for opt in options():
        group = groups[opt.name.split(".", 1)[0]]
        flags = [f"--{opt.name}"] + ([f"--{reverse[opt.name]}"] if opt.name in reverse else [])
        if opt.name == "data.taxonomies":
            group.add_argument(*flags, dest=opt.name, nargs="+", default=None, metavar="PATH",
                               help=_help(opt))
        else:
            group.add_argument(*flags, dest=opt.name, default=None, metavar=_metavar(opt),
                               type=lambda s, t=opt.type: _parse_value(s, t), help=_help(opt))
    groups["run"].add_argument(
        "--overwrite", dest="run.overwrite", action="store_const", const=True, default=None,
        help="replace the run already in --output (its last.pt, best.pt, metrics, config); "
        "without it such a folder is refused")
    groups["run"].add_argument(
        "--no-taxonomy-mask", dest="run.taxonomy_mask", action="store_const", const=False,
        default=None, help="train on the plain merged dataset (the naive baseline)")


def _help(opt: Option) -> str:
    """The field's help and its default, escaped for argparse's %-formatting."""
    shown = _SHOWN_DEFAULT.get(opt.name) or _show(opt.default)
    return f"{opt.help} (default: {shown})".replace("%", "%%")


def _show(value: Any) -> str:
    """A default as it would be typed on the command line (YAML syntax)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, list):  # data.taxonomies: nargs="+"
        return " ".join(map(_show, value))
    if isinstance(value, tuple):
        return "[" + ", ".join(map(_show, value)) + "]"
    return str(value)


def _metavar(opt: Option) -> str:
    if opt.name in _METAVARS:
        return _METAVARS[opt.name]
    if get_origin(opt.type) is Literal:
        return "{" + ",".join(get_args(opt.type)) + "}"
    return {int: "N", float: "X", bool: "BOOL"}.get(opt.type, "TEXT")


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


MAX_CONFIG_BYTES = 1 << 20  # a --config file; anything larger is not a training config


def _read_yaml(path: Path) -> Any:
    """A ``--config`` file parsed safely; a clear ``ConfigError`` naming it when unreadable."""
    try:
        if path.exists() and (not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES):
            raise ConfigError(f"{path}: not a regular file of at most {MAX_CONFIG_BYTES} bytes")
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputNotFoundError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
