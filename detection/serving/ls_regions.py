"""Detections -> one Label Studio prediction: rectangle regions in percent of the image.

The labels and thresholds are ``tools/predict.py``'s: super columns renamed to the customer's
labels (``LabelSpace.relabel``; a column several labels map to gives one region per label),
then the per-class thresholds file and the default score threshold (``apply_thresholds``).
Regions, boxes and the prediction are ``taxdet.detection.prediction.ls_format``'s (shared with
``predict.py --format label-studio``).
"""

from __future__ import annotations

from taxdet.detection.export.postprocess import ImageDetections
from taxdet.detection.prediction.customer_labels import LabelSpace
from taxdet.detection.prediction.thresholds_file import Thresholds, apply_thresholds


def coco_results(dets: ImageDetections, columns: tuple[int, ...]) -> list[dict]:
    """COCO results in super ids (column + 1), bbox x y w h original pixels; ``dets.classes``
    index ``columns``."""
    out = []
    for (x1, y1, x2, y2), score, cls in zip(dets.boxes.tolist(), dets.scores.tolist(),
                                            dets.classes.tolist()):
        out.append({"image_id": 0, "category_id": columns[cls] + 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "score": float(score)})
    return out


def kept_results(dets: ImageDetections, columns: tuple[int, ...], space: LabelSpace,
                 thresholds: Thresholds | None, score_threshold: float) -> list[dict]:
    """The detections as COCO results in the customer's ids, thresholded like predict.py."""
    results = space.relabel(coco_results(dets, columns))
    return apply_thresholds(results, space.names, thresholds, score_threshold)

