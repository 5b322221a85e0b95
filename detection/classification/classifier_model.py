"""The classifier network: a timm backbone chosen by name with a K-class layer.

``create_classifier`` builds ``timm.create_model(name, pretrained=False, num_classes=K)``:
nothing is ever downloaded. ``model.weights`` names a local file to start from (a timm or
torchvision state dict, or a classifier checkpoint's ``model``), read by
``taxdet.detection.engine.weights_file`` (``weights_only=True``: no code from the file runs). Its
classifier layer is used when its shape fits K classes and kept fresh otherwise (an ImageNet
file has 1000 classes); every other tensor must fit.
"""

from __future__ import annotations

import timm
from torch import nn

from taxdet.core.errors import ConfigError
from taxdet.core.names import did_you_mean
from taxdet.detection.classification.classifier_config import ClassifierModelConfig
from taxdet.detection.engine.checkpoint import weights_misfit
from taxdet.detection.engine.weights_file import CheckpointError, load


def create_classifier(cfg: ClassifierModelConfig, num_classes: int) -> nn.Module:
    """The timm model ``cfg.name`` with ``num_classes`` outputs, its weights from
    ``cfg.weights`` when given. ``ConfigError`` for a name timm does not know."""
    names = timm.list_models()
    if cfg.name not in names:
        raise ConfigError(f"model.name {cfg.name!r}: not a timm model (timm.list_models() lists "
                          f"them){did_you_mean(cfg.name, names)}")
    model = timm.create_model(cfg.name, pretrained=False, num_classes=num_classes,
                              drop_rate=cfg.drop_rate)
    if cfg.weights:
        load_weights_file(model, cfg.weights)
    return model


def classifier_keys(model: nn.Module) -> list[str]:
    """State-dict keys of the model's classifier layer (e.g. ``fc.weight``, ``fc.bias``)."""
    head = model.get_classifier()
    prefix = next(f"{n}." for n, m in model.named_modules() if m is head)
    return [prefix + name for name, _ in head.named_parameters()]


def load_weights_file(model: nn.Module, path: str) -> list[str]:
    """Load ``path`` into ``model``; returns the classifier keys kept fresh (shape differs or
    absent). ``CheckpointError`` naming the file when any other tensor misfits."""
    state = load(path, bare=True)
    weights = state["model"] if isinstance(state.get("model"), dict) else state
    wanted = model.state_dict()
    head = classifier_keys(model)
    fresh = [k for k in head if k not in weights or getattr(weights[k], "shape", None)
             != wanted[k].shape]
    usable = {k: v for k, v in weights.items() if k not in fresh}
    misfit = weights_misfit({k: v for k, v in wanted.items() if k not in fresh}, usable)
    if misfit:
        raise CheckpointError(f"{path}: the weights do not fit timm model "
                              f"{type(model).__name__}: {'; '.join(misfit)}")
    model.load_state_dict({**wanted, **usable})
    return fresh


def fit_class_rows(model: nn.Module, weights: dict, kept: list[tuple[str, int, int]]) -> dict:
    """``weights`` (a checkpoint's state dict for other classes) made to fit ``model``: its
    classifier layer is the model's fresh one with the rows ``(class, old row, new row)`` of
    ``weights`` copied in; every other tensor is taken from ``weights`` as it is."""
    fresh = model.state_dict()
    out = dict(weights)
    old, new = [i for _, i, _ in kept], [j for _, _, j in kept]
    for key in classifier_keys(model):
        rows = fresh[key].detach().clone()
        rows[new] = weights[key][old].to(rows.dtype)
        out[key] = rows
    return out
