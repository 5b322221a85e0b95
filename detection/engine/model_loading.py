"""Rebuild a training checkpoint's model for prediction, whatever the task.

``load_model`` runs the steps every task's predictor shares: read the checkpoint (digest
checked, no code run), check its task, read its taxonomies (or check the given ones against
it), rebuild its config, build the network, pick the EMA or raw weights, check that they fit,
load them, and put the model in eval mode on the device. What differs per task comes in a
``ModelSpec``: the config class, how to build the network, and how to describe it in errors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from taxdet.core.errors import ConfigError, InputError
from taxdet.detection.engine import checkpoint
from taxdet.detection.engine.checkpoint import CheckpointError
from taxdet.detection.engine.config_sections import Sections
from taxdet.detection.engine.distributed import DistInfo, pick_device
from taxdet.supertax import TaxonomySet

REQUIRED_KEYS = ("model", "config", "taxonomies", "taxonomy_hash")
EMA_PREFIX = "module."  # timm ModelEmaV3 keeps the averaged copy as ``self.module``


@dataclass(frozen=True)
class ModelSpec:
    """What a task tells ``load_model``: its config class (a ``Sections``), ``build(cfg,
    taxset)`` -> a fresh network, ``describe(cfg, taxset)`` -> "resnet18 with 7 classes" for
    errors, and the checkpoint's ``task`` it requires (None: no task key, a detector's) with
    the advice of the error for another task's checkpoint."""

    config: type[Sections]
    build: Callable[[Any, TaxonomySet], torch.nn.Module]
    describe: Callable[[Any, TaxonomySet], str]
    task: str | None = None
    wrong_task: str = ""
    # optional small checkpoint entries the task reads too (the detector's decoding_plan),
    # passed on in LoadedModel.extras (None when absent)
    extras: tuple[str, ...] = ()


# checkpoint["task"] -> what the messages call such a checkpoint (a detector's has no task)
TASK_NAMES = {None: "detector", "classification": "classifier"}


def task_name(task: Any) -> str:
    """``"a detector"``, ``"a classifier"``, or ``"a 'xyz' task's"`` for an unknown one."""
    known = (task is None or isinstance(task, str)) and task in TASK_NAMES
    return f"a {TASK_NAMES[task]}" if known else f"a {task!r} task's"


@dataclass
class LoadedModel:
    model: torch.nn.Module     # in eval mode on ``device``
    taxset: TaxonomySet
    config: Any
    device: torch.device
    extras: dict[str, Any] = field(default_factory=dict)   # ModelSpec.extras -> value or None


def ema_model_state(ema_state: dict[str, Any], source: str) -> dict[str, Any]:
    """The model's own keys from a ``ModelEmaV3.state_dict()`` (``module.<key>`` -> ``<key>``)."""
    if not isinstance(ema_state, dict):
        raise CheckpointError(f"{source}: 'ema' is a {type(ema_state).__name__}, not a state dict")
    foreign = [k for k in ema_state if not (isinstance(k, str) and k.startswith(EMA_PREFIX))]
    if foreign:
        raise CheckpointError(f"{source}: 'ema' weights are not a ModelEmaV3 state dict "
                              f"(keys without {EMA_PREFIX!r}, e.g. {foreign[:3]})")
    return {k[len(EMA_PREFIX):]: v for k, v in ema_state.items()}


def checkpoint_weights(ckpt: dict[str, Any], use_ema: bool, source: str
                       ) -> tuple[dict[str, Any], str]:
    """(state dict, "ema" | "model"): the EMA weights when asked for and present."""
    if use_ema and ckpt.get("ema") is not None:
        return ema_model_state(ckpt["ema"], source), "ema"
    return ckpt["model"], "model"


def checkpoint_taxonomies(ckpt: dict[str, Any], source: str | Path) -> TaxonomySet:
    """The checkpoint's own ``taxonomies``; a ``CheckpointError`` naming the file if unreadable."""
    try:
        return TaxonomySet.from_dict(ckpt["taxonomies"])
    except (InputError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{source}: its 'taxonomies' cannot be read "
                              f"({type(exc).__name__}: {exc})") from None


def checkpoint_config(ckpt: dict[str, Any], spec: ModelSpec, path: str | Path) -> Any:
    """The checkpoint's config as ``spec.config``; ``CheckpointError`` when it is not one."""
    try:
        return spec.config.from_dict(ckpt["config"], where=f"{path}: config")
    except (InputError, TypeError, ValueError) as exc:
        raise CheckpointError(str(exc)) from None


def load_model(path: str | Path, spec: ModelSpec, *, use_ema: bool = True,
               device: str | torch.device = "cpu", taxset: TaxonomySet | None = None
               ) -> LoadedModel:
    """The checkpoint's model in eval mode on ``device`` (module docstring). Taxonomies come
    from the checkpoint unless ``taxset`` is given, which must then hash like the checkpoint's.
    ``use_ema``: the EMA weights when the checkpoint has them, else the raw model's. Every
    problem with the file is a ``CheckpointError`` naming it."""
    ckpt = checkpoint.load(path, required=REQUIRED_KEYS)
    if ckpt.get("task") != spec.task:
        raise CheckpointError(f"{path}: {task_name(ckpt.get('task'))} checkpoint, not a "
                              f"{TASK_NAMES.get(spec.task, spec.task)} one ({spec.wrong_task})")
    if taxset is None:
        taxset = checkpoint_taxonomies(ckpt, path)
    checkpoint.check_taxonomy(ckpt, taxset, path)  # also catches a tampered 'taxonomies'
    cfg = checkpoint_config(ckpt, spec, path)
    model = spec.build(cfg, taxset)
    state, which = checkpoint_weights(ckpt, use_ema, str(path))
    misfit = checkpoint.weights_misfit(model, state)
    if misfit:
        raise CheckpointError(f"{path}: '{which}' weights do not fit "
                              f"{spec.describe(cfg, taxset)}: {'; '.join(misfit)}")
    model.load_state_dict(state, strict=True)
    try:
        dev = pick_device(str(device), DistInfo())
    except RuntimeError as exc:  # CUDA asked for but absent
        raise ConfigError(str(exc)) from None
    return LoadedModel(model.to(dev).eval(), taxset, cfg, dev,
                       {key: ckpt.get(key) for key in spec.extras})
