"""The boxes of one image the linter compares: ground truth, predictions, and their overlaps.

Boxes are ``x1, y1, x2, y2`` in original image pixels; classes are super-taxonomy columns.
Everything here is NumPy: an image holds tens of boxes, and the linter runs without torch.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field

import numpy as np

from taxdet.datasets.sample import Sample


def box_area(boxes: np.ndarray) -> np.ndarray:
    """[N] areas of boxes [N, 4] (zero for empty boxes)."""
    return np.clip(boxes[:, 2] - boxes[:, 0], 0, None) * np.clip(boxes[:, 3] - boxes[:, 1], 0, None)


def intersection(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, M] intersection areas of boxes a [N, 4] and b [M, 4]."""
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    return wh[..., 0] * wh[..., 1]


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, M] IoU of boxes a [N, 4] and b [M, 4] (0 where both are empty)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    inter = intersection(a, b)
    union = box_area(a)[:, None] + box_area(b)[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def box_ioa(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, M] share of each box of a [N, 4] inside each box of b [M, 4] (intersection / area
    of a; 0 for an empty a)."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    inter = intersection(a, b)
    area = box_area(a)[:, None]
    return np.divide(inter, area, out=np.zeros_like(inter), where=area > 0)


def xyxy_to_xywh_list(box) -> list[float]:
    """One box x1y1x2y2 as a COCO ``[x, y, w, h]`` list of rounded floats."""
    x1, y1, x2, y2 = (float(v) for v in box)
    return [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]


@dataclass
class ImageLabels:
    """The ground truth of one image: boxes [G, 4], classes [G], the customer's annotation ids
    [G] (-1 if unknown) and crowd / ignore regions [R, 4]."""

    boxes: np.ndarray
    classes: np.ndarray
    ann_ids: np.ndarray
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4)))

    @classmethod
    def of(cls, sample: Sample) -> ImageLabels:
        return cls(np.asarray(sample.boxes, np.float64).reshape(-1, 4),
                   np.asarray(sample.classes, np.int64),
                   np.asarray(sample.source_ann_ids, np.int64),
                   np.asarray(sample.ignore, np.float64).reshape(-1, 4))


@dataclass
class ImagePredictions:
    """A model's detections on one image: boxes [N, 4], scores [N], classes [N]."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray

    @classmethod
    def empty(cls) -> ImagePredictions:
        return cls(np.zeros((0, 4)), np.zeros(0), np.zeros(0, np.int64))

    def __len__(self) -> int:
        return len(self.scores)


def predictions_by_image(results: list[dict]) -> dict[int, ImagePredictions]:
    """COCO results (``category_id`` = column + 1, ``bbox`` xywh) grouped per image id."""
    rows: dict[int, list] = defaultdict(list)
    for r in results:
        x, y, w, h = r["bbox"]
        rows[int(r["image_id"])].append((x, y, x + w, y + h, r["score"], r["category_id"] - 1))
    out = {}
    for image_id, items in rows.items():
        a = np.asarray(items, np.float64)
        out[image_id] = ImagePredictions(a[:, :4], a[:, 4], a[:, 5].astype(np.int64))
    return out


def predictions_to_results(preds: dict[int, ImagePredictions]) -> list[dict]:
    """Inverse of ``predictions_by_image``: COCO results, image by image."""
    out = []
    for image_id, p in preds.items():
        for box, score, col in zip(p.boxes.tolist(), p.scores.tolist(), p.classes.tolist()):
            out.append({"image_id": image_id, "category_id": col + 1,
                        "bbox": xyxy_to_xywh_list(box), "score": round(score, 5)})
    return out
