"""cleanlab's object-detection label checks on the same samples and detections as the linter.

cleanlab (``pip install -e '.[bench]'``) knows no taxonomies: it gets every ground-truth box
in super-taxonomy columns and every detection of all K columns, as its documentation asks:
``labels[i] = {"bboxes": [L, 4] x1y1x2y2, "labels": [L]}``, ``predictions[i]`` = K arrays
``[M_k, 5]`` (``x1, y1, x2, y2, score``).

* image scores: ``1 - get_label_quality_scores`` (higher = more likely mislabeled);
* image flags: ``find_label_issues``;
* box flags: its three per-box scores (``compute_overlooked_box_scores`` per detection,
  ``compute_swap_box_scores`` and ``compute_badloc_box_scores`` per ground-truth box) as
  ``missing_box`` / ``wrong_class`` / ``bad_box`` flags scored ``1 - score``; ``flagged`` when
  ``find_label_issues``' own per-box rule (score <= per-class AP x factor) marks the box.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from benchmarks.lint_scoring import Flag
from taxdet.datasets.sample import Sample
from taxdet.detection.linting.issues import BAD_BOX, MISSING, WRONG_CLASS
from taxdet.detection.linting.matching import ImagePredictions, xyxy_to_xywh_list


def cleanlab_inputs(samples: list[Sample], preds: dict[int, ImagePredictions], num_classes: int
                    ) -> tuple[list[dict], list[list[np.ndarray]]]:
    """cleanlab's ``labels`` and ``predictions`` for the samples, in sample order."""
    labels, predictions = [], []
    empty = ImagePredictions.empty()
    for s in samples:
        labels.append({"bboxes": np.asarray(s.boxes, np.float64).reshape(-1, 4),
                       "labels": np.asarray(s.classes, np.int64), "image_name": str(s.image_id)})
        p = preds.get(s.image_id, empty)
        rows = np.concatenate([p.boxes, p.scores[:, None]], axis=1) if len(p) else \
            np.zeros((0, 5))
        predictions.append([rows[p.classes == k] if len(p) else np.zeros((0, 5))
                            for k in range(num_classes)])
    return labels, predictions


@dataclass
class CleanlabRun:
    image_scores: np.ndarray      # [N] 1 - label quality
    image_flags: np.ndarray       # [N] bool, find_label_issues
    flags: list[Flag]
    flagged: list[bool]           # per flag: marked by find_label_issues' per-box rule


def run_cleanlab(samples: list[Sample], preds: dict[int, ImagePredictions], num_classes: int
                 ) -> CleanlabRun:
    """cleanlab's image scores, image flags and box flags for the samples."""
    from cleanlab.object_detection.filter import find_label_issues
    from cleanlab.object_detection.rank import get_label_quality_scores
    labels, predictions = cleanlab_inputs(samples, preds, num_classes)
    quality = get_label_quality_scores(labels, predictions, verbose=False)
    issues = find_label_issues(labels, predictions)
    flags, flagged = box_flags(samples, labels, predictions)
    return CleanlabRun(1.0 - np.asarray(quality), np.asarray(issues, bool), flags, flagged)


def _box_scores(labels: list[dict], predictions: list) -> tuple[list, list, list, dict]:
    """cleanlab's per-box scores (overlooked, swap, badloc) and per-class AP thresholds."""
    from cleanlab.internal import constants as c
    from cleanlab.object_detection import filter as cf
    from cleanlab.object_detection import rank
    aux = rank._get_valid_inputs_for_compute_scores(c.ALPHA, labels, predictions)
    over = rank.compute_overlooked_box_scores(
        alpha=c.ALPHA, high_probability_threshold=c.HIGH_PROBABILITY_THRESHOLD,
        auxiliary_inputs=aux)
    swap = rank.compute_swap_box_scores(
        alpha=c.ALPHA, high_probability_threshold=c.HIGH_PROBABILITY_THRESHOLD,
        overlapping_label_check=True, auxiliary_inputs=aux)
    badloc = rank.compute_badloc_box_scores(
        alpha=c.ALPHA, low_probability_threshold=c.LOW_PROBABILITY_THRESHOLD,
        auxiliary_inputs=aux)
    return over, swap, badloc, cf._get_per_class_ap(labels, predictions)


def box_flags(samples: list[Sample], labels: list[dict], predictions: list
              ) -> tuple[list[Flag], list[bool]]:
    """Every scored box as a ``Flag``, and whether ``find_label_issues`` marks it."""
    from cleanlab.internal import constants as c
    over, swap, badloc, ap = _box_scores(labels, predictions)
    factors = {MISSING: c.OVERLOOKED_THRESHOLD_FACTOR, WRONG_CLASS: c.SWAP_THRESHOLD_FACTOR,
               BAD_BOX: c.BADLOC_THRESHOLD_FACTOR}
    flags, flagged = [], []
    for s, lab, pred, o, sw, b in zip(samples, labels, predictions, over, swap, badloc):
        boxes = np.concatenate(pred, axis=0)
        columns = np.concatenate([np.full(len(p), k) for k, p in enumerate(pred)])
        for kind, scores, cols in ((MISSING, o, columns), (WRONG_CLASS, sw, lab["labels"]),
                                   (BAD_BOX, b, lab["labels"])):
            for i, score in enumerate(np.asarray(scores, np.float64).tolist()):
                if np.isnan(score):
                    continue
                col = int(cols[i])
                gt = kind != MISSING
                flags.append(Flag(kind, 1.0 - score, s.taxonomy, int(s.source_image_id),
                                  int(s.source_ann_ids[i]) if gt else None,
                                  xyxy_to_xywh_list(lab["bboxes"][i] if gt else boxes[i, :4]),
                                  -1 if gt else col))
                flagged.append(score <= ap.get(col, 0.0) * factors[kind])
    return flags, flagged
