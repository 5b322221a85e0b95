"""One trunk, one sliced class head per customer: what the service runs.

The trunk (backbone + BiFPN) and the box head run once per image; each customer's class head
is the checkpoint's class head sliced to the columns that customer needs
(``taxdet.detection.export.sliced_head``). Images of several customers share one batch: the
trunk runs on the whole batch, each head on its customers' rows of the features.

Hierarchy-consistent decoding as ``tools/predict.py`` does it: a customer label mapped to a
parent column is scored as the max over that column and *every* super-taxonomy descendant, not
only the customer's own. So a head holds the customer's columns first, then the descendant
columns it needs for that max (``head_columns``); after the max the extra outputs are dropped.

Detections come from the NumPy post-processing of exported models
(``taxdet.detection.export.postprocess``: top-k, per-class NMS, original pixels), with
``PredictBench``'s defaults. The candidates and the 100-detection cap are the customer's own:
where the full model's cap over all classes would drop a customer detection (more than 100
stronger detections of any class in one image), the service keeps it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn as nn

from taxdet.datasets.transforms import normalize
from taxdet.detection.export.export_net import decode_boxes, flatten_levels
from taxdet.detection.export.exporter import output_hierarchy
from taxdet.detection.export.postprocess import (
    ImageDetections,
    PostprocessConfig,
    apply_hierarchy,
    detect,
)
from taxdet.detection.export.sliced_head import HeadOutputs, customer_outputs, slice_class_head
from taxdet.detection.model.detector_wrappers import PredictBench
from taxdet.supertax import TaxonomySet


@dataclass
class CustomerHead:
    """``outputs``: the customer's columns and labels; ``columns``: the head's columns (the
    customer's, then descendants for the hierarchy max); ``hierarchy``: groups among the head's
    outputs (parent first; empty: off); ``class_net``: the sliced head (None for ONNX)."""

    outputs: HeadOutputs
    columns: tuple[int, ...]
    hierarchy: tuple[tuple[int, ...], ...]
    class_net: nn.Module | None = None

    def logits(self, head_logits: np.ndarray) -> np.ndarray:
        """[A, K_head] head logits -> [A, K'] the customer's outputs, hierarchy max applied."""
        maxed = apply_hierarchy(np.asarray(head_logits, np.float32), self.hierarchy)
        return maxed[:, :len(self.outputs.columns)]


def head_columns(columns: tuple[int, ...], ancestors: np.ndarray, hierarchy: bool
                 ) -> tuple[int, ...]:
    """``columns``, then (with ``hierarchy``) every descendant column of them not yet listed,
    in column order. ``ancestors`` [K, K] (``TaxonomySet.ancestors``)."""
    if not hierarchy:
        return tuple(columns)
    anc = np.asarray(ancestors, dtype=bool)
    extra = [j for j in range(anc.shape[0])
             if j not in columns and any(anc[j, i] for i in columns)]
    return tuple(columns) + tuple(extra)


def customer_head(model: nn.Module | None, taxset: TaxonomySet, customer: str,
                  hierarchy: bool) -> CustomerHead:
    """The customer's ``CustomerHead``; its class net is sliced from ``model`` (an
    ``EfficientDet``; None: no torch head, e.g. for ONNX Runtime)."""
    outputs = customer_outputs(taxset, customer)
    columns = head_columns(outputs.columns, taxset.ancestors, hierarchy)
    groups = output_hierarchy(columns, taxset.ancestors) if hierarchy else ()
    net = slice_class_head(model, columns).class_net.eval() if model is not None else None
    return CustomerHead(outputs, columns, groups, net)


def per_customer(customers: list[str], head_logits: Callable[[str, list[int]], np.ndarray]
                 ) -> list[np.ndarray]:
    """Per image its head's logits [A, K_head]: ``head_logits(customer, rows)`` -> [R, A,
    K_head] runs a customer's head once on its ``rows`` of the batch."""
    logits: list[np.ndarray] = [np.empty(0)] * len(customers)
    for customer in dict.fromkeys(customers):
        rows = [i for i, c in enumerate(customers) if c == customer]
        out = head_logits(customer, rows)
        for k, i in enumerate(rows):
            logits[i] = out[k]
    return logits


class SharedTrunk:
    """The torch backend: ``PredictBench``'s model split into trunk + box head + heads, on the
    model's device."""

    def __init__(self, predictor: PredictBench, heads: dict[str, CustomerHead]):
        self.model = predictor.model.eval()
        self.heads = heads
        self.anchors = predictor.anchors.boxes.float()
        self.device = self.anchors.device

    @torch.no_grad()
    def raw(self, images: np.ndarray, customers: list[str]
            ) -> tuple[np.ndarray, list[np.ndarray]]:
        """images [B, 3, S, S] float32 RGB 0..255 letterboxed; customers [B] -> (boxes
        [B, A, 4] model-input pixels, per image its head's logits [A, K_head])."""
        x = normalize(torch.from_numpy(np.ascontiguousarray(images, np.float32))).to(self.device)
        features = self.model.fpn(self.model.backbone(x))
        boxes = decode_boxes(flatten_levels(self.model.box_net(features), 4), self.anchors)

        def head_logits(customer: str, rows: list[int]) -> np.ndarray:
            head = self.heads[customer]
            out = head.class_net([f[rows] for f in features])
            return flatten_levels(out, len(head.columns)).cpu().numpy()
        return boxes.cpu().numpy(), per_customer(customers, head_logits)


def detect_images(boxes: np.ndarray, logits: list[np.ndarray], heads: list[CustomerHead],
                  scales: list[float], sizes: list[tuple[int, int]],
                  post: PostprocessConfig = PostprocessConfig()) -> list[ImageDetections]:
    """Per image: its head's logits -> the customer's outputs -> detections (classes are output
    indices of ``head.outputs``). ``boxes`` [B, A, 4]; ``sizes`` (h, w) original pixels."""
    return [detect(b, head.logits(lg), s, hw, post)
            for b, lg, head, s, hw in zip(boxes, logits, heads, scales, sizes)]
