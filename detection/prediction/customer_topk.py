"""Top-k within one customer: a predictor whose candidates, NMS and detection cap are the
customer's classes only, as its sliced exported model returns them.

The full ``PredictBench`` keeps the ``max_det`` best detections over *all* super columns; a
customer whose labels take a few columns then gets what the other classes leave (8 of 100 on
a busy image). ``ColumnOutputs`` wraps the network so its class outputs are only the
customer's columns (``LabelSpace.column_labels``: each column once, in label order, as
``taxdet.detection.export.sliced_head.customer_outputs`` orders them),
taken after the hierarchy max over every column (``hierarchy_scores``), which is what the
sliced head computes (``shared_trunk.head_columns``: the customer's columns plus their
descendants, maxed, extra outputs dropped). Decoding, top-k and per-class NMS then run on
those K' columns.

    columns = tuple(space.column_labels())          # space: customer_labels(...)
    predictor = customer_predictor(predictor, columns, max_det=100)
    results = to_super_ids(predict_images(predictor, ...), predictor.model.columns)
"""

from __future__ import annotations

import copy

import numpy as np
import torch
import torch.nn as nn
from effdet.config import set_config_readonly, set_config_writeable

from taxdet.core.errors import ConfigError
from taxdet.detection.model.detector_wrappers import PredictBench
from taxdet.detection.model.hierarchy_scores import hierarchy_max_levels


class ColumnOutputs(nn.Module):
    """``model`` (an EfficientDet) whose per-level class outputs ``[B, nA * K, H, W]`` become
    ``[B, nA * K', H, W]``: the ``columns`` (K' of them, output ``i`` = column
    ``columns[i]``), after the hierarchy max when ``ancestors`` [K, K] is given. Box outputs
    are the model's. ``config`` is the model's with ``num_classes`` = K'."""

    def __init__(self, model: nn.Module, columns: tuple[int, ...],
                 ancestors: np.ndarray | None = None):
        super().__init__()
        self.model = model
        self.columns = tuple(columns)
        self.num_columns = model.config.num_classes
        self.ancestors = ancestors
        self.register_buffer("picked", torch.as_tensor(self.columns, dtype=torch.long),
                             persistent=False)
        self.config = copy.deepcopy(model.config)
        set_config_writeable(self.config)
        self.config.num_classes = len(self.columns)
        set_config_readonly(self.config)

    def forward(self, images: torch.Tensor) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        cls_out, box_out = self.model(images)
        if self.ancestors is not None:
            cls_out = hierarchy_max_levels(cls_out, self.ancestors, self.num_columns)
        return [self.select(level) for level in cls_out], box_out

    def select(self, level: torch.Tensor) -> torch.Tensor:
        """[B, nA * K, H, W] (anchor-major) -> [B, nA * K', H, W]: the columns, in order."""
        B, C, H, W = level.shape
        per_class = level.view(B, C // self.num_columns, self.num_columns, H, W)
        picked = per_class.index_select(2, self.picked.to(level.device))
        return picked.reshape(B, -1, H, W)


def customer_predictor(predictor: PredictBench, columns: tuple[int, ...],
                       max_det: int = 100) -> PredictBench:
    """A ``PredictBench`` over ``predictor``'s network that detects only the super
    ``columns`` (a customer's; at most ``max_det`` per image), with ``predictor``'s
    hierarchy decoding and score floor; its classes are output indices (``to_super_ids``
    maps them back). ``ConfigError`` for no column (every label ``maps_to: null``)."""
    if not columns:
        raise ConfigError("none of the customer's labels maps to a super-taxonomy class: "
                          "the model predicts nothing for it")
    ancestors = (np.asarray(predictor.hierarchy.cpu(), dtype=bool)
                 if predictor.hierarchy is not None else None)
    device = next(predictor.parameters()).device
    wrapped = ColumnOutputs(predictor.model, tuple(columns), ancestors)
    bench = PredictBench(wrapped, max_det_per_image=max_det,
                         score_threshold=predictor.score_threshold)
    bench.decoding, bench.dropped = predictor.decoding, predictor.dropped  # shared: one report
    return bench.to(device).eval()


def to_super_ids(results: list[dict], columns: tuple[int, ...]) -> list[dict]:
    """COCO results of a ``customer_predictor`` (category_id = output + 1) in super ids
    (column + 1)."""
    return [{**r, "category_id": columns[r["category_id"] - 1] + 1} for r in results]
