"""The trunk backends by name, for the service and for ``tools/predict.py --backend``.

    backend = trunk_backend("onnxruntime", predictor, heads, threads=1)
    boxes, logits = backend.raw(images, customers)           # ``SharedTrunk.raw``'s contract
    make = detector_factory("onnxruntime")
    detector = make(predictor, taxset, "customer_b", 100)     # PredictBench's call
    dets = detector(images, scale, orig_size)                 # classes: outputs of .columns

``torch`` is ``shared_trunk.SharedTrunk`` (on the model's device); ``onnxruntime`` is
``onnx_trunk.OnnxTrunk`` (exported at start-up, in memory, on the CPU). ``TrunkDetector`` runs
one head of either behind ``PredictBench``'s call, so
``taxdet.detection.prediction.predictor.predict_images`` runs it over predict.py's loader:
predict.py's images, resize and output, the service's model and post-processing.
"""

from __future__ import annotations

from typing import Callable

import numpy as np
import torch

from taxdet.core.errors import ConfigError
from taxdet.datasets.transforms import denormalize
from taxdet.detection.export.postprocess import PostprocessConfig
from taxdet.detection.export.shared_trunk import (
    CustomerHead,
    SharedTrunk,
    customer_head,
    detect_images,
)
from taxdet.detection.model.detector_wrappers import Detections, PredictBench
from taxdet.detection.model.drawable_boxes import DroppedBoxes
from taxdet.supertax import TaxonomySet

BACKENDS = ("torch", "onnxruntime")


def trunk_backend(name: str, predictor: PredictBench, heads: dict[str, CustomerHead],
                  threads: int | None = None):
    """``SharedTrunk`` (``torch``) or ``OnnxTrunk`` (``onnxruntime``, exported now) running
    ``heads``; ``threads``: ONNX Runtime's intra-op threads (None: its own)."""
    if name == "torch":
        return SharedTrunk(predictor, heads)
    if name == "onnxruntime":
        from taxdet.detection.export.onnx_trunk import OnnxTrunk
        return OnnxTrunk(predictor, heads, threads)
    raise ConfigError(f"backend {name!r}: expected one of {', '.join(BACKENDS)}")


class TrunkDetector:
    """One head of a trunk backend with ``PredictBench``'s call: (images [B, 3, S, S]
    ImageNet-normalised, scale [B], orig_size [B, 2] (h, w)) -> ``Detections`` per image,
    classes output indices of ``columns`` (super columns); degenerate boxes counted in
    ``dropped``."""

    device = torch.device("cpu")  # where its inputs go: the backend moves them itself

    def __init__(self, backend, head: CustomerHead, key: str, post: PostprocessConfig,
                 dropped: DroppedBoxes):
        self.backend, self.head, self.key, self.post = backend, head, key, post
        self.dropped = dropped
        self.columns = head.outputs.columns

    def eval(self) -> TrunkDetector:
        return self

    def __call__(self, images: torch.Tensor, scale: torch.Tensor, orig_size: torch.Tensor
                 ) -> list[Detections]:
        pixels = denormalize(images).numpy()
        B = len(pixels)
        boxes, logits = self.backend.raw(pixels, [self.key] * B)
        sizes = [(int(h), int(w)) for h, w in orig_size.tolist()]
        dets = detect_images(boxes, logits, [self.head] * B, scale.tolist(), sizes, self.post)
        for d in dets:
            self.dropped.add(d.dropped)
        return [Detections(torch.from_numpy(d.boxes), torch.from_numpy(d.scores),
                           torch.from_numpy(d.classes), d.dropped) for d in dets]


DetectorFactory = Callable[[PredictBench, TaxonomySet, "str | None", int], TrunkDetector]


def detector_factory(name: str, threads: int | None = None) -> DetectorFactory:
    """``make(predictor, taxset, customer, max_det)``: a ``TrunkDetector`` of backend ``name``
    for ``customer``'s sliced head (None: every column), with ``predictor``'s decoding
    (``predictor.hierarchy``, the decoding matrix) and score floor, keeping at most
    ``max_det`` detections per image (the customer's own, as the service)."""
    if name not in BACKENDS:
        raise ConfigError(f"backend {name!r}: expected one of {', '.join(BACKENDS)}")

    def make(predictor: PredictBench, taxset: TaxonomySet, customer: str | None,
             max_det: int) -> TrunkDetector:
        matrix = (None if predictor.hierarchy is None
                  else np.asarray(predictor.hierarchy.cpu(), dtype=bool))
        key = customer or ""
        head = customer_head(predictor.model, taxset, customer, matrix)
        backend = trunk_backend(name, predictor, {key: head}, threads)
        post = PostprocessConfig(max_det_per_image=max_det,
                                 score_threshold=predictor.score_threshold)
        return TrunkDetector(backend, head, key, post, predictor.dropped)
    return make
