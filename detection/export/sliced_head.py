"""A customer's outputs and a class head sliced to them (task-aware serving).

The class head's last conv (``HeadNet.predict``: a 1x1 ``conv_pw`` after a shared depthwise
conv for the separable EfficientDets, a 3x3 ``conv`` otherwise) has ``nA * K`` output channels
laid out anchor-major: channel ``a * K + k`` is anchor ``a``'s logit for column ``k`` (effdet's
post-processing reshapes ``[B, nA*K, H, W]`` -> ``[B, H, W, nA, K]``). Slicing to columns
``c_0 .. c_{K'-1}`` keeps the rows ``a * K + c_i`` of the weight and bias, in that order, so
channel ``a * K' + i`` of the smaller conv is exactly channel ``a * K + c_i`` of the full one.

Columns: each customer label's super-taxonomy column (``TaxonomySet.label_columns``; a label
mapped to a parent class uses the parent's column), each column once, in the order of the
customer's labels; labels with ``maps_to: null`` are "not predicted".
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn as nn
from effdet.config import set_config_readonly, set_config_writeable

from taxdet.core.errors import ConfigError
from taxdet.supertax import TaxonomySet


@dataclass(frozen=True)
class HeadOutputs:
    """What each class output of an exported model means.

    ``columns[i]``: the super-taxonomy column of output ``i``; ``labels[i]``: the names that
    output ``i`` predicts (customer labels, or the super class for the full head);
    ``not_predicted``: customer labels no output predicts; ``customer``: None for the full head.
    """

    columns: tuple[int, ...]
    labels: tuple[tuple[str, ...], ...]
    not_predicted: tuple[str, ...]
    customer: str | None


def full_outputs(taxset: TaxonomySet) -> HeadOutputs:
    """Every super-taxonomy column, named by its class."""
    return HeadOutputs(tuple(range(taxset.num_classes)), tuple((n,) for n in taxset.names),
                       (), None)


def customer_outputs(taxset: TaxonomySet, customer: str) -> HeadOutputs:
    """The columns ``customer``'s labels need (module docstring); ``ConfigError`` for an
    unknown customer or one with no predictable label."""
    if customer not in taxset.index:
        raise ConfigError(f"--customer {customer!r}: not a loaded taxonomy; known: "
                          f"{', '.join(taxset.index)}")
    names: dict[int, list[str]] = {}
    not_predicted = []
    for label, column in taxset.label_columns(customer).items():
        if column is None:
            not_predicted.append(label)
        else:
            names.setdefault(column, []).append(label)
    if not names:
        raise ConfigError(f"--customer {customer!r}: none of its labels maps to a super-taxonomy "
                          f"class ({', '.join(not_predicted)} are all maps_to: null)")
    return HeadOutputs(tuple(names), tuple(tuple(v) for v in names.values()),
                       tuple(not_predicted), customer)


def predict_conv(class_net: nn.Module, num_anchors: int, num_classes: int) -> tuple[nn.Module,
                                                                                    str]:
    """``(module holding the last conv, its attribute name)`` of an effdet ``HeadNet``: the conv
    with ``num_anchors * num_classes`` outputs (``predict.conv_pw`` or ``predict.conv``)."""
    predict = class_net.predict
    for name in ("conv_pw", "conv"):
        conv = getattr(predict, name, None)
        if isinstance(conv, nn.Conv2d) and conv.out_channels == num_anchors * num_classes:
            return predict, name
    raise ValueError(f"class head {type(predict).__name__} has no final conv with "
                     f"{num_anchors} x {num_classes} outputs")


def anchor_rows(columns: tuple[int, ...] | list[int], num_anchors: int,
                num_classes: int) -> torch.Tensor:
    """[nA * K'] rows of the full conv, anchor-major: ``a * K + columns[i]`` at ``a * K' + i``."""
    cols = torch.as_tensor(list(columns), dtype=torch.long)
    return (torch.arange(num_anchors)[:, None] * num_classes + cols[None, :]).reshape(-1)


def sliced_conv(conv: nn.Conv2d, rows: torch.Tensor) -> nn.Conv2d:
    """A copy of ``conv`` keeping only the output channels ``rows`` (weight and bias rows)."""
    out = nn.Conv2d(conv.in_channels, len(rows), conv.kernel_size, conv.stride, conv.padding,
                    conv.dilation, conv.groups, conv.bias is not None, conv.padding_mode)
    # timm's padding-aware convs (Conv2dSame) subclass Conv2d: keep their forward
    out.__class__ = conv.__class__
    with torch.no_grad():
        out.weight.copy_(conv.weight[rows])
        if conv.bias is not None:
            out.bias.copy_(conv.bias[rows])
    return out.to(conv.weight.device)


def slice_class_head(model: nn.Module, columns: tuple[int, ...]) -> nn.Module:
    """A deep copy of an ``EfficientDet`` whose class head outputs only ``columns``: per level
    ``[B, nA * K', H, W]`` with K' = len(columns), ``config.num_classes`` = K' (so
    ``PredictBench`` runs it as it is). The input model is not changed.

    ``ConfigError`` for per-taxonomy heads: their combined box of an anchor comes from the
    most confident head over *all* columns, so a sliced model would not give the same boxes.
    """
    if not hasattr(model, "class_net"):
        raise ConfigError(f"{type(model).__name__} (per-taxonomy heads) cannot be sliced to a "
                          "customer: each anchor's box is chosen over all classes; export the "
                          "full head (no --customer) and keep the customer's columns")
    cfg = model.config
    num_anchors = cfg.num_scales * len(cfg.aspect_ratios)
    K = cfg.num_classes
    if not columns or min(columns) < 0 or max(columns) >= K or len(set(columns)) != len(columns):
        raise ValueError(f"columns {columns} must be distinct columns of 0..{K - 1}")
    sliced = copy.deepcopy(model)
    holder, name = predict_conv(sliced.class_net, num_anchors, K)
    setattr(holder, name, sliced_conv(getattr(holder, name), anchor_rows(columns, num_anchors, K)))
    set_config_writeable(sliced.config)  # the copy's own config: PredictBench reads it
    sliced.config.num_classes = len(columns)
    set_config_readonly(sliced.config)
    return sliced
