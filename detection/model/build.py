"""Build an EfficientDet (through ``effdet``) whose head predicts the K super-taxonomy classes.

Weights come only from local files: ``pretrained_backbone`` (a timm state dict
of the backbone) and ``init_checkpoint`` (one of our checkpoints, or an effdet
state dict), read with ``weights_only=True``: no code from them ever runs. Nothing is ever
downloaded. ``ModelConfig`` lives in ``taxdet.detection.model.model_config`` (no torch there, for a
fast ``tools/train.py --help``) and is importable from here too.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import torch
from effdet import EfficientDet, get_efficientdet_config
from effdet.config.model_config import efficientdet_model_param_dict

from taxdet.core.errors import ConfigError
from taxdet.detection.anchors.fit import AnchorSpec
from taxdet.detection.engine.weights_file import load as load_weights_file
from taxdet.detection.model.model_config import ModelConfig

MODEL_NAMES = tuple(efficientdet_model_param_dict)


def effdet_config(cfg: ModelConfig, num_classes: int):
    """The effdet (OmegaConf) config for ``cfg`` with K classes, the overridden size and the
    anchor settings ``cfg`` sets (``ModelConfig.anchor_overrides``; the others stay the model's).

    Both the head (anchors per location: ``num_scales x len(aspect_ratios)``) and the anchors
    the labeler matches (``effdet.anchors.Anchors.from_config``) are built from it.
    """
    if cfg.name not in efficientdet_model_param_dict:
        raise ConfigError(f"unknown model {cfg.name!r}; choose one of: {', '.join(MODEL_NAMES)}")
    config = get_efficientdet_config(cfg.name)
    stride = 2 ** config.max_level
    if cfg.image_size <= 0 or cfg.image_size % stride:
        raise ConfigError(f"image size {cfg.image_size} must be a positive multiple of {stride} "
                          f"for {cfg.name} (feature levels up to {config.max_level})")
    config.image_size = (cfg.image_size, cfg.image_size)
    config.num_classes = num_classes
    for key, value in cfg.anchor_overrides().items():
        config[key] = value
    return config


def anchor_settings(cfg: ModelConfig) -> dict[str, Any]:
    """The anchors ``cfg`` gives the model: its own settings where set, else the effdet
    model's (``anchor_scale`` float, ``aspect_ratios`` list of (x, y) float tuples, a scalar
    ratio r of some effdet models as effdet reads it, (sqrt(r), 1 / sqrt(r)); ``num_scales``).

    >>> anchor_settings(ModelConfig("tf_efficientdet_lite0", image_size=128))["anchor_scale"]
    3.0
    """
    config = effdet_config(cfg, num_classes=1)
    pairs = [(math.sqrt(a), 1.0 / math.sqrt(a)) if isinstance(a, (int, float))
             else (float(a[0]), float(a[1])) for a in config.aspect_ratios]
    return {"anchor_scale": float(config.anchor_scale), "aspect_ratios": pairs,
            "num_scales": int(config.num_scales)}


def anchor_spec(cfg: ModelConfig) -> AnchorSpec:
    """The anchors a ``ModelConfig`` gives its model (the effdet model's own where unset), as
    the anchor fit (``taxdet.detection.anchors.fit``) compares them."""
    s = anchor_settings(cfg)
    return AnchorSpec(s["anchor_scale"], tuple(s["aspect_ratios"]), s["num_scales"])


def load_backbone(model: EfficientDet, path: str | Path) -> None:
    """Load a local timm backbone state dict; raise naming the file and the mismatching keys.

    The file is read like a checkpoint (``taxdet.detection.engine.weights_file.load``): with
    ``weights_only=True``, never running code from it; its digest is checked when it has one.
    """
    state = load_weights_file(path, bare=True)
    state = state.get("state_dict", state)
    if not isinstance(state, dict):
        raise ConfigError(f"{path}: its 'state_dict' is a {type(state).__name__}, not a dict")
    wanted = model.backbone.state_dict()
    usable = {k: v for k, v in state.items() if k in wanted and isinstance(v, torch.Tensor)
              and v.shape == wanted[k].shape}
    if not usable:
        raise ConfigError(f"{path}: no tensor matches the {model.config.backbone_name} backbone "
                          f"(first keys in file: {list(state)[:3]})")
    missing = [k for k in wanted if k not in usable]
    if missing:
        raise ConfigError(f"{path}: {len(missing)} backbone tensors missing or of another shape, "
                          f"e.g. {missing[:3]}")
    model.backbone.load_state_dict(usable, strict=True)


HEADS = ("shared", "per-taxonomy")


def create_model(cfg: ModelConfig, num_classes: int, head_masks=None) -> torch.nn.Module:
    """A freshly initialised EfficientDet with a K-class head (no download, ever).

    With ``cfg.heads == "per-taxonomy"``, ``head_masks`` [T, K] bool gives one head
    pair per taxonomy (``taxdet.detection.model.multihead.PerTaxonomyHeads``).

    >>> m = create_model(ModelConfig("efficientdet_d0", image_size=128), num_classes=7).eval()
    >>> [t.shape[1] for t in m(torch.zeros(1, 3, 128, 128))[0]][:1]  # 9 anchors x 7 classes
    [63]
    """
    model = EfficientDet(effdet_config(cfg, num_classes), pretrained_backbone=False)
    if cfg.pretrained_backbone:
        load_backbone(model, cfg.pretrained_backbone)
    if cfg.heads not in HEADS:
        raise ConfigError(f"unknown heads {cfg.heads!r}; choose one of: {', '.join(HEADS)}")
    if cfg.heads == "per-taxonomy":
        if head_masks is None:
            raise ValueError("per-taxonomy heads need the taxonomies' label masks")
        from taxdet.detection.model.multihead import PerTaxonomyHeads
        return PerTaxonomyHeads(model, torch.as_tensor(head_masks))
    return model
