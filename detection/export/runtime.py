"""Run an exported model: ONNX through onnxruntime, TorchScript through ``torch.jit.load``.

    model = ExportedModel("model.onnx")                   # reads model.onnx.labels.json beside it
    image, scale = letterbox(rgb_uint8, model.image_size)  # [3, S, S] float32, float
    dets = model.detect(image[None], [scale], [rgb_uint8.shape[:2]])
    names = [model.class_labels[c] for c in dets[0].classes]

A TorchScript file is a program: ``torch.jit.load`` runs its code, so load only files you
exported yourself. An ONNX file is a graph of standard operators, run by onnxruntime.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from taxdet.core.errors import ConfigError
from taxdet.detection.export.exporter import label_map_path, read_label_map
from taxdet.detection.export.postprocess import ImageDetections, PostprocessConfig, detect_batch


def letterbox(image: np.ndarray, image_size: int) -> tuple[np.ndarray, float]:
    """[H, W, 3] uint8 RGB -> ([3, S, S] float32 0..255, scale): the prediction resize and
    pad (``taxdet.datasets.transforms.eval_transform``)."""
    from taxdet.datasets.augment_config import AugmentConfig
    from taxdet.datasets.transforms import eval_transform
    empty = np.zeros((0, 4), np.float32)
    out = eval_transform(AugmentConfig(image_size=image_size))(
        image, empty, np.zeros(0, np.int64), np.zeros(0, np.float32))
    return np.ascontiguousarray(out.image.transpose(2, 0, 1), dtype=np.float32), out.scale


class ExportedModel:
    """An exported file (format from its label map) and its label map."""

    def __init__(self, model_path: str | Path, labels_path: str | Path | None = None,
                 threads: int | None = None):
        self.path = Path(model_path)
        self.labels = read_label_map(labels_path or label_map_path(model_path))
        self.format = self.labels.get("model_format")
        self.image_size = int(self.labels["input"]["shape"][2])
        self.class_labels = [c["labels"] for c in self.labels["classes"]]
        self.post = PostprocessConfig(**self.labels["postprocess"])
        if self.format == "onnx":
            self._run = _onnx_runner(self.path, threads)
        elif self.format == "torchscript":
            self._run = _torchscript_runner(self.path)
        else:
            raise ConfigError(f"{self.path}: unknown model_format {self.format!r} in its label map")

    def raw(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """images [B, 3, S, S] float32 -> (boxes [B, A, 4], class_logits [B, A, K])."""
        return self._run(np.ascontiguousarray(images, dtype=np.float32))

    def detect(self, images: np.ndarray, scales, orig_sizes) -> list[ImageDetections]:
        """Detections per image (``taxdet.detection.export.postprocess.detect``); classes are output
        indices (``class_labels[i]`` names them)."""
        boxes, logits = self.raw(images)
        return detect_batch(boxes, logits, scales, orig_sizes, self.post)


def require_onnxruntime():
    """The ``onnxruntime`` module, or a ``ConfigError`` saying how to install it."""
    try:
        import onnxruntime
    except ImportError:
        raise ConfigError("ONNX models run with onnxruntime, which is not installed: "
                          "pip install 'taxonomy-detection[export]'") from None
    return onnxruntime


def ort_session(model: Path | bytes, threads: int | None):
    """An onnxruntime CPU session of an ONNX file, or of its bytes (``threads``: intra-op
    threads; None: onnxruntime's own)."""
    ort = require_onnxruntime()
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _onnx_runner(path: Path, threads: int | None):
    session = ort_session(path, threads)

    def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        boxes, logits = session.run(["boxes", "class_logits"], {"images": images})
        return boxes, logits
    return run


def _torchscript_runner(path: Path):
    import torch
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated, still works
        module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with torch.no_grad():
            boxes, logits = module(torch.from_numpy(images))
        return boxes.numpy(), logits.numpy()
    return run
