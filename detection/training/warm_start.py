"""Warm start across taxonomy changes: a checkpoint's class-head columns matched by class name.

``--init-checkpoint`` of a checkpoint trained for other taxonomies. Everything but the class
head's output convolution must fit as it is (backbone, BiFPN, the class head's inner layers and
the whole box head, so the same model and anchors). The output convolution's rows are matched by
super-class name:

* **kept**: a class of both: its rows are copied from the checkpoint;
* **new**: a class only the current taxonomies have: its rows keep their fresh initialisation
  (weights drawn as effdet draws them, bias at the focal-loss prior ``-log((1 - 0.01) / 0.01)``);
* **dropped**: a class only the checkpoint has: its rows are not used.

effdet's class output has A x K channels, anchor-major: channel ``a * K + k`` is anchor ``a``'s
logit for class ``k`` (``permute(0, 2, 3, 1).reshape(B, -1, K)`` in its post-processing), so rows
are matched per anchor. A change that keeps the classes (a customer whose labels map onto
existing classes) is a plain warm start: the weights load as they are.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

import taxdet.supertax as supertax
from taxdet.core.errors import InputError
from taxdet.detection.engine.checkpoint import taxonomy_differences, weights_misfit
from taxdet.detection.engine.weights_file import CheckpointError


@dataclass
class ClassMapping:
    """How the checkpoint's class columns map onto the current ones."""

    kept: list[tuple[str, int, int]] = field(default_factory=list)   # (class, old col, new col)
    new: list[tuple[str, int]] = field(default_factory=list)         # (class, new col)
    dropped: list[tuple[str, int]] = field(default_factory=list)     # (class, old col)

    @classmethod
    def by_name(cls, old: list[str], new: list[str]) -> ClassMapping:
        where = {name: i for i, name in enumerate(old)}
        out = cls()
        for j, name in enumerate(new):
            if name in where:
                out.kept.append((name, where[name], j))
            else:
                out.new.append((name, j))
        now = set(new)
        out.dropped = [(name, i) for i, name in enumerate(old) if name not in now]
        return out

    @property
    def identity(self) -> bool:
        return not self.new and not self.dropped and all(i == j for _, i, j in self.kept)

    def to_dict(self) -> dict:
        return {"kept": [{"class": n, "checkpoint_column": i, "column": j}
                         for n, i, j in self.kept],
                "new": [{"class": n, "column": j} for n, j in self.new],
                "dropped": [{"class": n, "checkpoint_column": i} for n, i in self.dropped]}

    def summary(self) -> str:
        def names(rows) -> str:
            return ", ".join(r[0] for r in rows) or "none"
        return (f"kept {len(self.kept)} class(es) ({names(self.kept)}); new {len(self.new)} "
                f"({names(self.new)}); dropped {len(self.dropped)} ({names(self.dropped)})")


def class_output_keys(model: torch.nn.Module) -> list[str]:
    """State-dict keys of the class head's output convolution (weight [A*K, C, kh, kw], bias
    [A*K]): ``class_net.predict.conv_pw.*`` (separable) or ``class_net.predict.conv.*``."""
    predict = model.class_net.predict
    conv = getattr(predict, "conv_pw", None) or predict.conv
    prefix = next(f"class_net.predict.{n}." for n, m in predict.named_modules() if m is conv)
    return [prefix + name for name, _ in conv.named_parameters()]


def remap_columns(old: torch.Tensor, fresh: torch.Tensor, mapping: ClassMapping,
                  anchors: int) -> torch.Tensor:
    """``fresh`` [A*K, ...] with the kept classes' rows taken from ``old`` [A*K_old, ...]
    (channel ``a * K + k``, per anchor ``a``)."""
    out = fresh.detach().clone()
    src = old.reshape(anchors, -1, *old.shape[1:])      # [A, K_old, ...]
    dst = out.view(anchors, -1, *out.shape[1:])          # [A, K, ...] view into out
    if mapping.kept:
        from_cols = torch.tensor([i for _, i, _ in mapping.kept])
        to_cols = torch.tensor([j for _, _, j in mapping.kept])
        dst[:, to_cols] = src[:, from_cols].to(dst.dtype)
    return out


@dataclass
class WarmStart:
    """The weights to load and what was matched (``record`` goes to ``init_mapping.json``)."""

    weights: dict
    mapping: ClassMapping
    record: dict


def warm_start(ckpt: dict, model: torch.nn.Module, taxset: supertax.TaxonomySet, heads: str,
               path: str | Path) -> WarmStart:
    """Fit the weights of a checkpoint of other taxonomies (``ckpt["taxonomies"]``) to ``model``
    (built for ``taxset``) by class name; ``CheckpointError`` when they cannot be fitted."""
    try:
        old = supertax.TaxonomySet.from_dict(ckpt["taxonomies"])
    except (InputError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{path}: its 'taxonomies' cannot be read "
                              f"({type(exc).__name__}: {exc})") from None
    changes = taxonomy_differences(old, taxset)
    if heads != "shared":
        raise CheckpointError(
            f"{path}: trained for other taxonomies ({'; '.join(changes) or 'hash differs'}); "
            f"a warm start across taxonomy changes needs shared heads, and this run has "
            f"{heads} heads (one head pair per taxonomy). Train with --model.heads shared, or "
            "from scratch")
    mapping = ClassMapping.by_name(old.names, taxset.names)
    if not mapping.kept:
        raise CheckpointError(
            f"{path}: no class matches by name: the checkpoint has {old.names}, the taxonomies "
            f"loaded now have {taxset.names}; nothing to warm-start from")
    weights = ckpt.get("model")
    if not isinstance(weights, dict):
        raise CheckpointError(f"{path}: no 'model' weights to warm-start from")
    weights = _fit_class_head(weights, model, mapping, len(old.names), path)
    record = {"checkpoint": str(path), "checkpoint_taxonomy_hash": ckpt.get("taxonomy_hash"),
              "taxonomy_hash": taxset.hash, "taxonomy_changes": changes, **mapping.to_dict()}
    return WarmStart(weights, mapping, record)


def _fit_class_head(weights: dict, model: torch.nn.Module, mapping: ClassMapping, old_k: int,
                    path: str | Path) -> dict:
    """``weights`` with the class output rows remapped; ``CheckpointError`` when anything else
    does not fit (the box head first)."""
    keys, fresh = class_output_keys(model), model.state_dict()
    anchors = fresh[keys[0]].shape[0] // len(mapping.kept + mapping.new)
    rest = {k: v for k, v in weights.items() if k not in keys}
    wanted = {k: v for k, v in fresh.items() if k not in keys}
    misfit = weights_misfit(wanted, rest)
    box = [k for k in wanted if k.startswith("box_net.predict.") and k in rest
           and rest[k].shape != wanted[k].shape]
    if box:
        raise CheckpointError(
            f"{path}: its box head has another shape ({box[0]} {list(rest[box[0]].shape)}, "
            f"this model {list(wanted[box[0]].shape)}): other anchors or another model; "
            "a warm start across taxonomies keeps the model and its anchors")
    if misfit:
        raise CheckpointError(f"{path}: beyond the class columns its weights do not fit this "
                              f"model: {'; '.join(misfit)}")
    out = dict(rest)
    for key in keys:
        old = weights.get(key)
        if not isinstance(old, torch.Tensor) or old.shape[0] != anchors * old_k \
                or old.shape[1:] != fresh[key].shape[1:]:
            got = list(old.shape) if isinstance(old, torch.Tensor) else type(old).__name__
            raise CheckpointError(
                f"{path}: {key} is {got}, expected {anchors} anchors x {old_k} classes = "
                f"{anchors * old_k} rows like {list(fresh[key].shape[1:])}: not the checkpoint's "
                "class head for its own taxonomies")
        out[key] = remap_columns(old, fresh[key], mapping, anchors)
    return out
