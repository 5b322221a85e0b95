"""One trunk, one sliced class head per customer: what the service runs (and ``predict.py
--backend``, through ``taxdet.detection.export.trunk_backends``).

The trunk (backbone + BiFPN) and the box head run once per image; each customer's class head
is the checkpoint's class head sliced to the columns that customer needs
(``taxdet.detection.export.sliced_head``). Images of several customers share one batch: the
trunk runs on the whole batch, each head on its customers' rows of the features.

Decoding as ``tools/predict.py`` does it (``taxdet.detection.prediction.hierarchy_decoding``:
coverage by default): a customer label mapped to a parent column is scored as the max over that
column and *every* super-taxonomy descendant it trusts, not only the customer's own (a
descendant-decoded column leaves its own logit out, an excluded one is never detected). So a
head holds the customer's columns first, then the descendant columns it needs for that max
(``head_columns``); after the max the extra outputs are dropped.

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
from taxdet.detection.export.exporter import output_decoding
from taxdet.detection.export.postprocess import (
    ImageDetections,
    PostprocessConfig,
    apply_hierarchy,
    detect,
)
from taxdet.detection.export.sliced_head import (
    HeadOutputs,
    customer_outputs,
    full_outputs,
    slice_class_head,
)
from taxdet.detection.model.detector_wrappers import PredictBench
from taxdet.supertax import TaxonomySet


@dataclass
class CustomerHead:
    """``outputs``: the customer's columns and labels; ``columns``: the head's columns (the
    customer's, then descendants for the hierarchy max); ``hierarchy``: groups among the head's
    outputs (parent first; empty: off); ``class_net``: the sliced head (None for ONNX);
    ``descendant_decoded`` / ``excluded``: head outputs per the checkpoint's decoding plan
    (``PostprocessConfig``)."""

    outputs: HeadOutputs
    columns: tuple[int, ...]
    hierarchy: tuple[tuple[int, ...], ...]
    class_net: nn.Module | None = None
    descendant_decoded: tuple[int, ...] = ()
    excluded: tuple[int, ...] = ()

    def logits(self, head_logits: np.ndarray) -> np.ndarray:
        """[A, K_head] head logits -> [A, K'] the customer's outputs, decoding applied."""
        maxed = apply_hierarchy(np.asarray(head_logits, np.float32), self.hierarchy,
                                self.descendant_decoded, self.excluded)
        return maxed[:, :len(self.outputs.columns)]


def decoding_of(matrix: np.ndarray | bool | None, ancestors: np.ndarray) -> np.ndarray | None:
    """A head's decoding matrix [K, K] bool (``hierarchy_scores``) from a matrix, or from the
    older booleans (True: ``ancestors``, hierarchy decoding; False / None: own scores)."""
    if isinstance(matrix, bool) or matrix is None:
        return np.asarray(ancestors, dtype=bool) if matrix else None
    return np.asarray(matrix, dtype=bool)


def head_columns(columns: tuple[int, ...], ancestors: np.ndarray,
                 hierarchy: np.ndarray | bool | None) -> tuple[int, ...]:
    """``columns``, then every column not yet listed that one of them is scored from (with
    ``hierarchy`` True: every descendant), in column order. ``ancestors`` [K, K]
    (``TaxonomySet.ancestors``); ``hierarchy``: a decoding matrix, or a bool (``decoding_of``)."""
    matrix = decoding_of(hierarchy, ancestors)
    if matrix is None:
        return tuple(columns)
    extra = [j for j in range(matrix.shape[0])
             if j not in columns and any(matrix[j, i] for i in columns)]
    return tuple(columns) + tuple(extra)


def customer_head(model: nn.Module | None, taxset: TaxonomySet, customer: str | None,
                  hierarchy: np.ndarray | bool | None, every_column: bool = False
                  ) -> CustomerHead:
    """The customer's ``CustomerHead`` (``customer`` None: the super-taxonomy's, every column
    an output); its class net is sliced from ``model`` (an ``EfficientDet``; None: no torch
    head, e.g. for ONNX Runtime). ``hierarchy``: the decoding matrix
    (``taxdet.detection.prediction.hierarchy_decoding.decoding_matrix``) or a bool.
    ``every_column``: the head computes all K columns (the customer's first), the full-head
    model's cost, and keeps the customer's outputs as the sliced head does (benchmarks)."""
    outputs = full_outputs(taxset) if customer is None else customer_outputs(taxset, customer)
    matrix = decoding_of(hierarchy, taxset.ancestors)
    columns = head_columns(outputs.columns, taxset.ancestors, matrix)
    if every_column:
        columns += tuple(j for j in range(taxset.num_classes) if j not in columns)
    decoding = output_decoding(columns, matrix)
    net = slice_class_head(model, columns).class_net.eval() if model is not None else None
    return CustomerHead(outputs, columns, decoding["hierarchy"], net,
                        decoding["descendant_decoded"], decoding["excluded"])


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
