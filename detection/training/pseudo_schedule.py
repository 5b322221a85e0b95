"""When the EMA teacher pseudo-labels, and how sure it must be (``pseudo:`` config section).

* **Start.** From ``start_step`` on, and, with ``start_ap > 0``, only once some validation
  so far reached that federated AP (``TrainState.history``, so a resumed run starts as the
  uninterrupted one): a young teacher's mistakes are not taught.
* **Per-class thresholds** (``class_precision > 0``). At every validation, each class's
  positive threshold becomes the lowest teacher score whose detections reach that precision
  (IoU 0.5) on the validation images of the customers that label the class (the federated
  view, ``taxdet.detection.evaluation.threshold_fit``). A class with fewer than
  ``MIN_GT_BOXES`` validation boxes, without detections, or that never reaches the precision
  gets ``inf``: no pseudo-positive. Before the first validation every class has ``inf`` too.
  The thresholds are fitted on the validation's detection scores (after NMS, under the run's
  decoding) and applied to each anchor's own column: the same score for a leaf; for a
  parent, whose decoded score is at least its own column's, a conservative cut (its
  pseudo-positives come mostly from its children's anyway, one path up the tree).
"""

from __future__ import annotations

import numpy as np

from taxdet.detection.evaluation.groundtruth import GroundTruth
from taxdet.detection.evaluation.threshold_fit import (
    class_matches,
    class_threshold,
    scored_predictions,
)
from taxdet.losses.loss_config import PseudoLabelConfig


def teacher_ready(cfg: PseudoLabelConfig, step: int, history: list[dict], metric: str = "AP"
                  ) -> bool:
    """True once pseudo-labels start: ``step >= cfg.start_step`` and, with ``cfg.start_ap``, a
    validation in ``history`` (``[{"step", metric}]``) reached it."""
    if step < cfg.start_step:
        return False
    return cfg.start_ap <= 0 or any(h.get(metric, -1.0) >= cfg.start_ap for h in history)


def class_thresholds(truth: GroundTruth, results: list[dict], names: list[str],
                     precision: float) -> np.ndarray:
    """``[K]`` float32 positive thresholds in the order of ``names`` (the super-taxonomy's
    columns) of the validation ``results`` against ``truth`` (module docstring)."""
    preds, _ = scored_predictions(truth, results, federated=True, source="<validation>")
    out = np.full(len(names), np.inf, dtype=np.float32)
    column = {n: k for k, n in enumerate(names)}
    for cat, name in zip(truth.category_ids, truth.names):
        if cat not in truth.eval_ids or name not in column:
            continue
        scores, tp, n_gt = class_matches(truth, preds, cat, True)
        if n_gt:
            value, _, fallback = class_threshold(scores, tp, n_gt, precision)
            if not fallback:                        # evaluate.py would use FALLBACK: never here
                out[column[name]] = value
    return out
