"""Per-class score thresholds fitted on a labeled validation set (``evaluate.py --fit-thresholds``).

Detections are matched to ground truth per image and class, greedily: in decreasing score
order each detection takes the still unmatched ground-truth box it overlaps most, if their
IoU reaches ``iou`` (0.5), and is then a true positive; otherwise a false positive. Crowd
boxes (``iscrowd``) are left out. Cutting a class's detections at score ``t`` keeps those
scoring ``>= t``; the candidate cuts are the class's distinct detection scores.

* ``f1`` (default): the cut with the highest F1 = 2PR / (P + R) (ties: the higher score);
* ``precision >= P``: the lowest cut whose precision reaches P (the most recall at that
  precision).

Every class with ground truth gets a threshold, never null (a null one would silently leave
it without pre-labels): a class with fewer than ``MIN_GT_BOXES`` ground-truth boxes, without
detections, whose best F1 is 0 or that never reaches P gets ``FALLBACK`` (0.3, the default
``predict.py --score-threshold``); its ``fit`` entry says why (``fallback``) and one logged
warning names these classes. Classes without ground-truth boxes are not fitted
(``predict.py`` then uses ``--score-threshold``). Detections are taken in the evaluation's
view (customer labels, federated dropping).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import numpy as np

from taxdet.detection.evaluation.customer import map_to_customer
from taxdet.detection.evaluation.federated import drop_unlabeled
from taxdet.detection.evaluation.groundtruth import GroundTruth
from taxdet.detection.evaluation.inputs import EvalInputError, Predictions, check_predictions
from taxdet.detection.prediction.thresholds_file import Thresholds

IOU = 0.5
MIN_GT_BOXES = 3   # fewer ground-truth boxes: the class gets FALLBACK
FALLBACK = 0.3     # predict.py's default --score-threshold
log = logging.getLogger(__name__)


@dataclass
class ClassFit:
    """The chosen cut of one class and the validation numbers there."""

    threshold: float | None
    precision: float
    recall: float
    f1: float
    gt_boxes: int
    detections: int  # kept at the threshold

    def to_dict(self) -> dict:
        return {"precision": round(self.precision, 4), "recall": round(self.recall, 4),
                "f1": round(self.f1, 4), "gt_boxes": self.gt_boxes, "detections": self.detections}


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """[N, M] IoU of boxes ``a`` [N, 4] and ``b`` [M, 4], both COCO x, y, w, h."""
    ax2, ay2 = a[:, 0] + a[:, 2], a[:, 1] + a[:, 3]
    bx2, by2 = b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    w = np.minimum(ax2[:, None], bx2[None]) - np.maximum(a[:, None, 0], b[None, :, 0])
    h = np.minimum(ay2[:, None], by2[None]) - np.maximum(a[:, None, 1], b[None, :, 1])
    inter = np.clip(w, 0, None) * np.clip(h, 0, None)
    union = (a[:, 2] * a[:, 3])[:, None] + (b[:, 2] * b[:, 3])[None] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def greedy_match(gt_boxes: np.ndarray, det_boxes: np.ndarray, det_scores: np.ndarray,
                 iou: float = IOU) -> np.ndarray:
    """[D] bool true positives of one image and class: detections [D, 4] in decreasing score
    order (stable) each take the unmatched ground-truth box [G, 4] of highest IoU >= ``iou``."""
    tp = np.zeros(len(det_boxes), dtype=bool)
    if not len(gt_boxes) or not len(det_boxes):
        return tp
    overlaps = iou_matrix(det_boxes, gt_boxes)
    free = np.ones(len(gt_boxes), dtype=bool)
    for d in np.argsort(-det_scores, kind="stable"):
        cand = np.where(free, overlaps[d], -1.0)
        g = int(np.argmax(cand))
        if cand[g] >= iou:
            tp[d], free[g] = True, False
    return tp


def pick_threshold(scores: np.ndarray, tp: np.ndarray, gt_boxes: int,
                   precision: float | None = None) -> ClassFit:
    """The cut of one class: detections' ``scores`` [D] and ``tp`` [D] bool, ``gt_boxes`` > 0."""
    order = np.argsort(-scores, kind="stable")
    s, hits = scores[order], np.cumsum(tp[order])
    last = np.flatnonzero(np.append(s[1:] != s[:-1], True))  # last detection of each score
    kept = last + 1
    prec, rec = hits[last] / kept, hits[last] / gt_boxes
    f1 = np.where(prec + rec > 0, 2 * prec * rec / np.where(prec + rec > 0, prec + rec, 1), 0.0)
    if precision is None:
        best = int(np.argmax(f1))  # the first best: the higher score on ties
        ok = f1[best] > 0
    else:
        reach = np.flatnonzero(prec >= precision)
        best, ok = (int(reach[-1]), True) if len(reach) else (int(np.argmax(prec)), False)
    return ClassFit(float(s[last[best]]) if ok else None, float(prec[best]), float(rec[best]),
                    float(f1[best]), gt_boxes, int(kept[best]) if ok else 0)


def class_matches(truth: GroundTruth, preds: Predictions, category_id: int, federated: bool,
                  iou: float = IOU) -> tuple[np.ndarray, np.ndarray, int]:
    """(scores [D], tp [D] bool, ground-truth boxes) of one category over every image."""
    anns = [a for a in truth.coco_dataset(federated)["annotations"]
            if a["category_id"] == category_id and not a["iscrowd"]]
    sel = preds.select(preds.category_ids == category_id)
    tp = np.zeros(len(sel), dtype=bool)
    gt_img = np.array([a["image_id"] for a in anns], dtype=np.int64)
    gt_box = np.array([a["bbox"] for a in anns], dtype=np.float64).reshape(-1, 4)
    for image_id in np.unique(sel.image_ids):
        d = np.flatnonzero(sel.image_ids == image_id)
        tp[d] = greedy_match(gt_box[gt_img == image_id], sel.boxes[d], sel.scores[d], iou)
    return sel.scores, tp, len(anns)


def scored_predictions(truth: GroundTruth, predictions: list, federated: bool | None,
                       source: str = "<predictions>") -> tuple[Predictions, bool]:
    """The detections the evaluation scores (checked, mapped to the customer's labels,
    dropped where their image leaves the class unlabeled), and whether federated."""
    preds = check_predictions(predictions, truth.sizes, set(truth.prediction_ids), source)
    if truth.view == "customer":
        return map_to_customer(preds, truth)[0], False
    fed = truth.has_missing if federated is None else federated
    return (drop_unlabeled(preds, truth)[0] if fed else preds), fed


def _floor(score: float, digits: int = 6) -> float:
    """``score`` rounded down, so the detection scoring it is still kept."""
    return math.floor(score * 10 ** digits) / 10 ** digits


def class_threshold(scores: np.ndarray, tp: np.ndarray, n_gt: int, precision: float | None
                    ) -> tuple[float, dict, str]:
    """(threshold, fit entry, why it is ``FALLBACK`` or "") of one class with ``n_gt`` > 0
    ground-truth boxes."""
    if n_gt < MIN_GT_BOXES or not len(scores):
        why = (f"{n_gt} ground-truth boxes, fewer than {MIN_GT_BOXES}" if n_gt < MIN_GT_BOXES
               else "no detections")
        return FALLBACK, {"fallback": why, "gt_boxes": n_gt, "detections": len(scores)}, why
    fit = pick_threshold(scores, tp, n_gt, precision)
    if fit.threshold is None:
        why = "no detection matches" if precision is None or not tp.any() else \
            f"precision {precision:g} is never reached"
        return FALLBACK, {**fit.to_dict(), "fallback": why}, why
    return _floor(fit.threshold), fit.to_dict(), ""


def fit_thresholds(truth: GroundTruth, predictions: list, *, federated: bool | None = None,
                   precision: float | None = None, iou: float = IOU,
                   taxonomy: str | None = None) -> Thresholds:
    """Per-class thresholds (by class name) of ``predictions`` (COCO results in the view's
    prediction ids) against ``truth``; see the module docstring (one warning names the
    classes given ``FALLBACK``)."""
    if precision is not None and not 0 < precision <= 1:
        raise EvalInputError(f"--precision {precision}: expected a value in (0, 1]")
    preds, fed = scored_predictions(truth, predictions, federated)
    names = dict(zip(truth.category_ids, truth.names))
    values, fits, fallbacks = {}, {}, {}
    for cat in truth.eval_ids:
        scores, tp, n_gt = class_matches(truth, preds, cat, fed, iou)
        if n_gt:
            values[names[cat]], fits[names[cat]], why = class_threshold(scores, tp, n_gt,
                                                                        precision)
            if why:
                fallbacks[names[cat]] = why
    if fallbacks:
        log.warning(f"{len(fallbacks)} classes get the fallback threshold {FALLBACK} (too "
                    "little to fit on): " + "; ".join(f"{n} ({w})" for n, w in fallbacks.items()))
    criterion = "f1" if precision is None else f"precision >= {precision:g}"
    return Thresholds(values, taxonomy, criterion, iou, fits)
