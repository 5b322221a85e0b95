"""taxdet.detection.training.pseudo_schedule: when the teacher starts, per-class thresholds."""

from __future__ import annotations

import numpy as np

from taxdet.detection.evaluation import load_ground_truth
from taxdet.detection.training.pseudo_schedule import class_thresholds, teacher_ready
from taxdet.losses.loss_config import PseudoLabelConfig
from tests.detection.evaluation.test_threshold_fit import _case


def test_the_teacher_starts_at_its_step_and_once_a_validation_reached_its_ap():
    steps = PseudoLabelConfig(enabled=True, start_step=10)
    assert not teacher_ready(steps, 9, []) and teacher_ready(steps, 10, [])
    gated = PseudoLabelConfig(enabled=True, start_step=10, start_ap=0.4)
    history = [{"step": 50, "AP": 0.3}]
    assert not teacher_ready(gated, 60, history)
    assert teacher_ready(gated, 60, history + [{"step": 100, "AP": 0.41}])
    assert not teacher_ready(gated, 5, [{"step": 1, "AP": 0.9}])       # and not before its step


def test_class_thresholds_are_the_lowest_score_at_the_precision_else_never():
    gt, preds = _case()       # car: 0.9, 0.8 hits, 0.7 a miss, ...; person: one box, no hit
    out = class_thresholds(load_ground_truth(gt), preds, ["truck", "car", "person"], 0.9)
    assert out.dtype == np.float32
    assert out.tolist() == [np.inf, np.float32(0.8), np.inf]   # truck: no ground truth
    assert class_thresholds(load_ground_truth(gt), preds, ["car"], 0.5).tolist() == [
        np.float32(0.3)]                                  # precision 4/7 at the last cut
