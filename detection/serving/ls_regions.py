"""Detections -> one Label Studio prediction: rectangle regions in percent of the image.

The labels and thresholds are ``tools/predict.py``'s: super columns renamed to the customer's
labels (``LabelSpace.relabel``; a column several labels map to gives one region per label),
then the per-class thresholds file and the default score threshold (``apply_thresholds``).

Boxes: finite, clipped to the image, at least 1 px wide and high (others are dropped). A
region (Label Studio's ``rectanglelabels`` result)::

    {"id": "r0", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
     "original_width": 640, "original_height": 480, "image_rotation": 0,
     "value": {"x": 10.0, "y": 5.0, "width": 20.0, "height": 30.0, "rotation": 0,
               "rectanglelabels": ["Car"]},
     "score": 0.91}

The prediction's ``score`` is the mean region score (0 without regions), as HumanSignal's YOLO
backend reports it.
"""

from __future__ import annotations

import math

from taxdet.detection.export.postprocess import ImageDetections
from taxdet.detection.prediction.customer_labels import LabelSpace
from taxdet.detection.prediction.thresholds_file import Thresholds, apply_thresholds
from taxdet.detection.serving.label_config import LabelingConfig


def coco_results(dets: ImageDetections, columns: tuple[int, ...]) -> list[dict]:
    """COCO results in super ids (column + 1), bbox x y w h original pixels; ``dets.classes``
    index ``columns``."""
    out = []
    for (x1, y1, x2, y2), score, cls in zip(dets.boxes.tolist(), dets.scores.tolist(),
                                            dets.classes.tolist()):
        out.append({"image_id": 0, "category_id": columns[cls] + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
    return out


def clean_box(bbox: list[float], width: int, height: int) -> tuple[float, ...] | None:
    """``[x, y, w, h]`` -> finite, clipped to the image, at least 1 px each way; else None."""
    if not all(math.isfinite(v) for v in bbox):
        return None
    x1, y1 = max(0.0, bbox[0]), max(0.0, bbox[1])
    x2, y2 = min(float(width), bbox[0] + bbox[2]), min(float(height), bbox[1] + bbox[3])
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return x1, y1, x2 - x1, y2 - y1


def region(index: int, name: str, box: tuple[float, ...], score: float, size: tuple[int, int],
           config: LabelingConfig) -> dict:
    """One ``rectanglelabels`` result; ``size`` (width, height) original pixels."""
    w, h = size
    x, y, bw, bh = box
    return {"id": f"r{index}", "from_name": config.from_name, "to_name": config.to_name,
            "type": "rectanglelabels", "original_width": w, "original_height": h,
            "image_rotation": 0,
            "value": {"x": 100.0 * x / w, "y": 100.0 * y / h, "width": 100.0 * bw / w,
                      "height": 100.0 * bh / h, "rotation": 0, "rectanglelabels": [name]},
            "score": round(score, 5)}


def kept_results(dets: ImageDetections, columns: tuple[int, ...], space: LabelSpace,
                 thresholds: Thresholds | None, score_threshold: float) -> list[dict]:
    """The detections as COCO results in the customer's ids, thresholded like predict.py."""
    results = space.relabel(coco_results(dets, columns))
    return apply_thresholds(results, space.names, thresholds, score_threshold)


def prediction(results: list[dict], space: LabelSpace, size: tuple[int, int],
               config: LabelingConfig, model_version: str) -> dict:
    """One task's prediction: ``{"result": [regions], "score", "model_version"}``."""
    regions = []
    for r in results:
        box = clean_box(r["bbox"], *size)
        if box is not None:
            regions.append(region(len(regions), space.names[r["category_id"]], box, r["score"],
                                  size, config))
    score = sum(r["score"] for r in regions) / len(regions) if regions else 0.0
    return {"result": regions, "score": round(score, 5), "model_version": model_version}
