"""The ONNX Runtime backend: the shared trunk and each customer's sliced head as ONNX graphs.

    backend = OnnxTrunk(predictor, heads, threads=2)
    boxes, logits = backend.raw(images, customers)       # as ``SharedTrunk.raw``

Exported once at start-up, in memory, with the exporter's graph pieces
(``taxdet.detection.export.export_net``): the trunk graph is normalisation + backbone + BiFPN +
box head + per-anchor box decoding, ``images`` [B, 3, S, S] -> ``boxes`` [B, A, 4] and the L
feature levels; a customer's head graph is its sliced class head
(``taxdet.detection.export.sliced_head``, built by ``shared_trunk.customer_head``), the L levels
-> ``class_logits`` [B, A, K_head]. The trunk runs once per batch, each head on its customers'
rows of the features. Both run on the CPU (``CPUExecutionProvider``).
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import torch
import torch.nn as nn
from effdet.anchors import Anchors

from taxdet.datasets.transforms import imagenet_mean_std
from taxdet.detection.export.export_net import decode_boxes, flatten_levels
from taxdet.detection.export.exporter import DEFAULT_OPSET, example_input
from taxdet.detection.export.runtime import ort_session
from taxdet.detection.export.shared_trunk import CustomerHead, per_customer
from taxdet.detection.model.detector_wrappers import PredictBench


class TrunkNet(nn.Module):
    """images [B, 3, S, S] RGB 0..255 -> (boxes [B, A, 4] model-input pixels, level 0 features,
    ..., level L-1 features); ``ExportNet``'s normalisation and box decoding."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.backbone, self.fpn, self.box_net = model.backbone, model.fpn, model.box_net
        self.register_buffer("anchors", Anchors.from_config(model.config).boxes.float())
        mean, std = imagenet_mean_std()
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        features = self.fpn(self.backbone((images - self.mean) / self.std))
        boxes = decode_boxes(flatten_levels(self.box_net(features), 4), self.anchors)
        return (boxes, *features)


class HeadGraph(nn.Module):
    """The L feature levels -> class_logits [B, A, K_head] of one customer's sliced head."""

    def __init__(self, class_net: nn.Module, outputs: int):
        super().__init__()
        self.class_net, self.outputs = class_net, outputs

    def forward(self, *features: torch.Tensor) -> torch.Tensor:
        return flatten_levels(self.class_net(list(features)), self.outputs)


def graph_bytes(net: nn.Module, example: tuple[torch.Tensor, ...], inputs: list[str],
                outputs: list[str]) -> bytes:
    """The ONNX file of ``net`` (TorchScript-based exporter as ``exporter.onnx_bytes``; every
    input and output has a free batch dimension)."""
    buf = io.BytesIO()
    dynamic = {name: {0: "B"} for name in (*inputs, *outputs)}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(net.eval(), example, buf, dynamo=False, opset_version=DEFAULT_OPSET,
                          input_names=inputs, output_names=outputs, dynamic_axes=dynamic,
                          do_constant_folding=True)
    return buf.getvalue()


class OnnxTrunk:
    """See the module docstring; ``raw`` has ``SharedTrunk.raw``'s contract."""

    def __init__(self, predictor: PredictBench, heads: dict[str, CustomerHead],
                 threads: int | None = None):
        model = predictor.model.cpu().eval()
        trunk = TrunkNet(model)
        example = example_input(int(model.config.image_size[0]))
        with torch.no_grad():
            features = trunk(example)[1:]
        self.levels = [f"level{i}" for i in range(len(features))]
        self.trunk = ort_session(graph_bytes(trunk, (example,), ["images"],
                                             ["boxes", *self.levels]), threads)
        self.heads = {c: ort_session(graph_bytes(HeadGraph(h.class_net.cpu(), len(h.columns)),
                                                 tuple(features), self.levels,
                                                 ["class_logits"]), threads)
                      for c, h in heads.items()}

    def raw(self, images: np.ndarray, customers: list[str]
            ) -> tuple[np.ndarray, list[np.ndarray]]:
        """images [B, 3, S, S] float32 RGB 0..255 letterboxed; customers [B] -> (boxes
        [B, A, 4] model-input pixels, per image its head's logits [A, K_head])."""
        boxes, *features = self.trunk.run(None, {"images": np.ascontiguousarray(images,
                                                                                np.float32)})

        def head_logits(customer: str, rows: list[int]) -> np.ndarray:
            feeds = {name: np.ascontiguousarray(f[rows]) for name, f in zip(self.levels, features)}
            return self.heads[customer].run(None, feeds)[0]
        return boxes, per_customer(customers, head_logits)
