"""Federated scoring over partially labeled images (the idea of LVIS's not-exhaustive classes).

A class is scored only on the images whose taxonomy labels it: a detection of class c on an
image that leaves c unlabeled is neither a true nor a false positive (dropped for that image),
and that image has no ground truth for c. In COCO's accumulation an image with neither
ground truth nor detections of c contributes nothing to c's precision or recall, so dropping
those detections (and any boxes of c there) and then running ordinary COCO evaluation over
all images gives exactly the per-class AP over the images labeling c. When every image labels
every class nothing is dropped and federated equals plain COCO.
"""

from __future__ import annotations

import numpy as np

from taxdet.detection.evaluation.groundtruth import GroundTruth
from taxdet.detection.evaluation.inputs import Predictions


def label_lookup(preds: Predictions, gt: GroundTruth) -> np.ndarray:
    """[D] bool: the image of each detection labels the detection's class."""
    if not len(preds):
        return np.zeros(0, dtype=bool)
    rows = positions(gt.image_ids, preds.image_ids)
    cols = positions(np.array(gt.category_ids, dtype=np.int64), preds.category_ids)
    return gt.labeled[rows, cols]


def positions(keys: np.ndarray, values: np.ndarray) -> np.ndarray:
    """Index into ``keys`` [N] (unique) of each of ``values`` [D] (all present in ``keys``)."""
    order = np.argsort(keys)
    return order[np.searchsorted(keys[order], values)]


def drop_unlabeled(preds: Predictions, gt: GroundTruth) -> tuple[Predictions, int]:
    """Detections on images that label their class, and how many were dropped."""
    keep = label_lookup(preds, gt)
    return preds.select(keep), int((~keep).sum())


def images_labeling(gt: GroundTruth, image_ids: list[int] | None = None) -> dict[int, int]:
    """Category id -> number of images (of ``image_ids``, default all) that label it."""
    labeled = gt.labeled
    if image_ids is not None:
        labeled = labeled[np.isin(gt.image_ids, image_ids)]
    return dict(zip(gt.category_ids, labeled.sum(axis=0).tolist()))
