"""The export's parity check: the written file's detections against the eager network's, on
real images.

    batch = sample_batch(None, exported.image_size)        # demo images, else generated ones
    result = check_export(exported, model_path, labels_path, batch)   # ExportCheckError if off

Images: ``--sample-images DIR`` (up to ``SAMPLE_COUNT`` of its images, sorted by name), else the
demo's ``data/demo/test/images`` when it exists (relative to the working folder), else
``SAMPLE_COUNT`` generated images (gradients plus noise, three aspect ratios); each letterboxed
as for prediction (``runtime.letterbox``).

Comparison, per image: the eager ``ExportNet`` outputs go through the NumPy post-processing
(``postprocess.detect``, the label map's settings) to give the reference detections: valid
boxes only, since degenerate ones are dropped (``taxdet.detection.model.drawable_boxes``). The
exported file's outputs are read at each detection's anchor and class, decoded, scaled and
clipped the same way, and must match: every box coordinate within ``BOX_RTOL`` x the box's
longer side + ``BOX_ATOL`` px (original pixels), the exported box drawable too, every score
within ``SCORE_ATOL``. The exported class logits must also match the eager ones everywhere
(``LOGIT_ATOL`` + ``LOGIT_RTOL`` x |eager|), so the file picks the same candidates. Reading
the exported outputs at the eager detections' anchors keeps the check independent of how
near-tied scores of a young model happen to be ordered.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from taxdet.core.errors import InputError
from taxdet.detection.export.postprocess import ImageDetections, PostprocessConfig, detect
from taxdet.detection.model.drawable_boxes import drawable_numpy

DEMO_IMAGES = Path("data/demo/test/images")
SAMPLE_COUNT = 4
GENERATED_SIZES = ((480, 640), (640, 360), (512, 512), (300, 900))  # (h, w)
BOX_RTOL, BOX_ATOL = 1e-3, 1e-2      # x the box's longer side, + px (original pixels)
SCORE_ATOL = 1e-4
LOGIT_ATOL, LOGIT_RTOL = 1e-3, 1e-4


class ExportCheckError(InputError):
    """The exported file does not reproduce the eager model (nothing was written)."""


@dataclass
class SampleBatch:
    """Letterboxed images [B, 3, S, S] float32 0..255, scales [B], original sizes [B, 2]
    (h, w), and where they came from."""

    images: np.ndarray
    scales: np.ndarray
    sizes: np.ndarray
    source: str


@dataclass
class CheckResult:
    """What the check compared and the worst differences it found."""

    images: int
    detections: int
    box_error: float      # max |exported - eager| / (longer side x BOX_RTOL + BOX_ATOL)
    score_error: float    # max |exported - eager| score
    logit_error: float    # max |exported - eager| / (LOGIT_ATOL + LOGIT_RTOL x |eager|)
    source: str

    @property
    def passed(self) -> bool:
        return self.box_error <= 1 and self.score_error <= SCORE_ATOL and self.logit_error <= 1

    def summary(self) -> str:
        return (f"{self.detections} detections on {self.images} images of {self.source}: box "
                f"error {self.box_error:.2g} of the tolerance ({BOX_RTOL:g} x box side + "
                f"{BOX_ATOL:g} px), score error {self.score_error:.2g} (tolerance "
                f"{SCORE_ATOL:g}), logit error {self.logit_error:.2g} of the tolerance")


def generated_images(count: int = SAMPLE_COUNT, seed: int = 0) -> list[np.ndarray]:
    """``count`` [H, W, 3] uint8 RGB images of ``GENERATED_SIZES``: gradients plus noise."""
    rng = np.random.default_rng(seed)
    out = []
    for h, w in GENERATED_SIZES[:count]:
        yy, xx = np.mgrid[0:h, 0:w]
        base = np.stack([xx * 255 / w, yy * 255 / h, (xx + yy) * 127 / (h + w)], -1)
        out.append(np.clip(base + rng.normal(0, 30, (h, w, 3)), 0, 255).astype(np.uint8))
    return out


def folder_images(folder: Path, flag: str) -> list[np.ndarray]:
    """Up to ``SAMPLE_COUNT`` images of ``folder`` (sorted by name) as RGB arrays;
    ``ExportCheckError`` naming ``flag`` when it has none."""
    from taxdet.datasets.torch_dataset import load_image
    from taxdet.detection.prediction.image_inputs import is_image
    if not folder.is_dir():
        raise ExportCheckError(f"{flag} {folder}: folder not found")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and is_image(p))[:SAMPLE_COUNT]
    if not files:
        raise ExportCheckError(f"{flag} {folder}: no image files in it")
    return [load_image(str(p)) for p in files]


def sample_batch(folder: Path | None, image_size: int) -> SampleBatch:
    """The check's images (module docstring), letterboxed to ``image_size``."""
    from taxdet.detection.export.runtime import letterbox
    if folder is not None:
        images, source = folder_images(folder, "--sample-images"), str(folder)
    elif DEMO_IMAGES.is_dir():
        images, source = folder_images(DEMO_IMAGES, "demo images"), str(DEMO_IMAGES)
    else:
        images, source = generated_images(), "generated images"
    boxed = [letterbox(im, image_size) for im in images]
    return SampleBatch(np.stack([b for b, _ in boxed]), np.array([s for _, s in boxed],
                                                                 np.float32),
                       np.array([im.shape[:2] for im in images]), source)


def box_errors(eager: ImageDetections, boxes: np.ndarray, scale: float,
               size: tuple[int, int]) -> np.ndarray:
    """Per eager detection [N]: the exported box's error in units of its tolerance
    (inf where the exported box is not drawable). ``boxes`` [A, 4]: the exported file's."""
    img_scale = np.float32(1.0) / np.float32(scale)
    got, ok = drawable_numpy(boxes[eager.anchors] * img_scale, *size)
    side = (eager.boxes[:, 2:] - eager.boxes[:, :2]).max(axis=1, initial=0.0)
    diff, tol = np.abs(got - eager.boxes).max(axis=1, initial=0.0), BOX_RTOL * side + BOX_ATOL
    err = np.divide(diff, tol, out=np.where(diff > 0, np.inf, 0.0), where=tol > 0)
    return np.where(ok, err, np.inf)


def score_errors(eager: ImageDetections, logits: np.ndarray, post: PostprocessConfig
                 ) -> np.ndarray:
    """Per eager detection [N]: |exported score - eager score|. ``logits`` [A, K]."""
    decoded = post.decode(np.asarray(logits, np.float32))[eager.anchors, eager.classes]
    return np.abs(1.0 / (1.0 + np.exp(-decoded)) - eager.scores)


def logit_error(got: np.ndarray, want: np.ndarray) -> float:
    """max |got - want| in units of ``LOGIT_ATOL + LOGIT_RTOL x |want|`` (inf for NaN)."""
    err = np.abs(got - want) / (LOGIT_ATOL + LOGIT_RTOL * np.abs(want))
    return float(np.nan_to_num(err, nan=np.inf).max(initial=0.0))


def compare(eager: tuple[np.ndarray, np.ndarray], exported: tuple[np.ndarray, np.ndarray],
            batch: SampleBatch, post: PostprocessConfig) -> CheckResult:
    """The check (module docstring) on raw outputs (boxes [B, A, 4], logits [B, A, K])."""
    boxes_err, scores_err, count = [0.0], [0.0], 0
    for i, (scale, hw) in enumerate(zip(batch.scales, batch.sizes)):
        size = (int(hw[0]), int(hw[1]))
        ref = detect(eager[0][i], eager[1][i], float(scale), size, post)
        count += len(ref.scores)
        boxes_err += box_errors(ref, exported[0][i], float(scale), size).tolist()
        scores_err += score_errors(ref, exported[1][i], post).tolist()
    return CheckResult(len(batch.scales), count, max(boxes_err), max(scores_err),
                       logit_error(exported[1], eager[1]), batch.source)


def check_export(exported, model_path: Path, labels_path: Path, batch: SampleBatch
                 ) -> CheckResult:
    """Run the written file (``runtime.ExportedModel``) and the eager net of ``exported`` (an
    ``exporter.Exported``) on ``batch``; ``ExportCheckError`` when they differ."""
    from taxdet.detection.export.runtime import ExportedModel
    with torch.no_grad():
        want = tuple(t.numpy() for t in exported.net(torch.from_numpy(batch.images)))
    try:
        model = ExportedModel(model_path, labels_path)
        got = model.raw(batch.images)
    except InputError:
        raise
    except Exception as exc:  # the runtime rejects the file: an export bug, told as such
        raise ExportCheckError(f"the exported file cannot be run: {exc}") from None
    result = compare(want, got, batch, model.post)
    if not result.passed:
        raise ExportCheckError(f"the exported model's detections differ from the eager "
                               f"model's: {result.summary()}")
    return result
