"""The exported graph: normalisation + EfficientDet + per-anchor box decoding, nothing after.

    ExportNet(model, num_outputs, image_size)(images) -> (boxes, class_logits)

* ``images``        [B, 3, S, S] float32: RGB 0..255, letterboxed as for prediction (long side
  resized to S, padded bottom/right with ``taxdet.datasets.transforms.PAD_FILL``); S is fixed by the
  anchors, B is free.
* ``boxes``         [B, A, 4] float32: every anchor's decoded box, x1 y1 x2 y2 in model-input
  pixels (size regressions clamped at log(1000/16), ``taxdet.detection.model.drawable_boxes``;
  not clipped); A = sum over levels of H_l * W_l * nA (D0 at 512 px: 49,104).
* ``class_logits``  [B, A, K] float32: logits (sigmoid gives the score) of the K outputs (all
  super-taxonomy columns, or a customer's columns for a sliced head).

Anchors are ordered like effdet's ``Anchors.boxes`` and its post-processing: level, then row,
column, then anchor. Top-k, NMS and the mapping back to original pixels stay outside the graph
(``taxdet.detection.export.postprocess``): effdet's batched NMS has data-dependent shapes and Python
control flow that neither tracing nor the ONNX exporter reproduce faithfully.
"""

from __future__ import annotations

import torch
import torch.nn as nn
from effdet.anchors import Anchors

from taxdet.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD
from taxdet.detection.model.drawable_boxes import clamp_size_codes


def decode_boxes(codes: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """codes [B, A, 4] (ty, tx, th, tw); anchors [A, 4] y1 x1 y2 x2 -> [B, A, 4] x1 y1 x2 y2.

    The size regressions are clamped first (``clamp_size_codes``, as ``PredictBench`` does),
    then the arithmetic of ``effdet.anchors.decode_box_outputs`` in the same order, so the
    values are the same bit for bit."""
    ycenter_a = (anchors[:, 0] + anchors[:, 2]) / 2
    xcenter_a = (anchors[:, 1] + anchors[:, 3]) / 2
    ha = anchors[:, 2] - anchors[:, 0]
    wa = anchors[:, 3] - anchors[:, 1]
    ty, tx, th, tw = clamp_size_codes(codes).unbind(dim=-1)
    w = torch.exp(tw) * wa
    h = torch.exp(th) * ha
    ycenter = ty * ha + ycenter_a
    xcenter = tx * wa + xcenter_a
    return torch.stack([xcenter - w / 2., ycenter - h / 2., xcenter + w / 2., ycenter + h / 2.],
                       dim=-1)


def flatten_levels(levels: list[torch.Tensor], width: int) -> torch.Tensor:
    """Per-level [B, nA * width, H, W] -> [B, A, width] (anchor-major channels)."""
    return torch.cat([t.permute(0, 2, 3, 1).reshape(t.shape[0], -1, width) for t in levels], 1)


class ExportNet(nn.Module):
    """See the module docstring. ``model``: an ``EfficientDet`` (or per-taxonomy heads) in eval
    mode whose class head has ``num_outputs`` outputs per anchor."""

    def __init__(self, model: nn.Module, num_outputs: int):
        super().__init__()
        self.model = model
        self.num_outputs = num_outputs
        self.image_size = int(model.config.image_size[0])
        self.register_buffer("anchors", Anchors.from_config(model.config).boxes.float())
        mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
        self.register_buffer("mean", mean)
        self.register_buffer("std", std)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """images [B, 3, S, S] RGB 0..255 -> (boxes [B, A, 4], class_logits [B, A, K])."""
        cls_out, box_out = self.model((images - self.mean) / self.std)
        logits = flatten_levels(cls_out, self.num_outputs)
        boxes = decode_boxes(flatten_levels(box_out, 4), self.anchors)
        return boxes, logits
