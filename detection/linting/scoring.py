"""The four checks of one image: missing, wrong-class, badly placed and duplicate boxes.

Every check compares the image's ground truth (``ImageLabels``) with a model's detections
(``ImagePredictions``) in the terms of the image's customer (``CustomerView``). With G
ground-truth boxes and N detections, ``iou`` is [G, N]; a detection *matches* a box at
``iou >= match_iou``. Scores, each in [0, 1]:

* wrong class: ``s_contra * (1 - s_support)``: ``s_contra`` is the best matching detection of
  a class the customer would have labeled otherwise (its asked class is off the box's path),
  ``s_support`` the best matching detection of the box's class or a class below it. A coarse
  label (``Human`` = ``person``) is supported by a ``pedestrian_child`` detection.
* bad box: ``s_near * (1 - s_good)``: ``s_near`` is the best detection of a class on the box's
  path overlapping it in ``[bad_box_iou, match_iou)`` that matches no other box, ``s_good``
  the best one on the path that matches it.
* missing box: the detection's score, for a detection whose class the customer labels (or
  labels coarsely through an ancestor) that matches no box, lies in no crowd region and is
  not the better placement of a bad box. Detections of one object (IoU >= ``match_iou``) give
  one issue, the best-scoring (the more specific class on a tie).
* duplicate box: the IoU of two boxes of one class, when ``>= duplicate_iou``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taxdet.core.config_field import config_field
from taxdet.core.errors import ConfigError
from taxdet.detection.linting.customer_view import CustomerView
from taxdet.detection.linting.issues import BAD_BOX, DUPLICATE, MISSING, WRONG_CLASS, Issue
from taxdet.detection.linting.matching import (
    ImageLabels,
    ImagePredictions,
    box_ioa,
    box_iou,
    xyxy_to_xywh_list,
)


@dataclass(frozen=True)
class LintConfig:
    """Thresholds of the checks (see the module docstring)."""

    match_iou: float = config_field(0.5, "a detection and a box at this IoU or more are one "
                                    "object")
    bad_box_iou: float = config_field(0.1, "a detection on the box's class path overlapping it "
                                      "at IoU in [this, match_iou) makes it a bad box")
    duplicate_iou: float = config_field(0.9, "two boxes of one class at this IoU or more are "
                                        "duplicates")
    ignore_ioa: float = config_field(0.5, "a detection with this share of its area inside a "
                                     "crowd region is never a missing box")
    min_score: float = config_field(0.3, "issues scoring lower are not reported")

    def __post_init__(self) -> None:
        for name in ("match_iou", "bad_box_iou", "duplicate_iou", "ignore_ioa", "min_score"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ConfigError(f"{name} must be in [0, 1], got {value}")
        if self.bad_box_iou >= self.match_iou:
            raise ConfigError(f"bad_box_iou ({self.bad_box_iou}) must be below match_iou "
                              f"({self.match_iou})")


@dataclass(frozen=True)
class ImageInfo:
    """Where an image comes from, copied into its issues."""

    customer: str
    image_id: int
    file_name: str
    source_image_id: int = -1
    source_file: str = ""


@dataclass
class ImageCase:
    """One image's ground truth and detections, with their IoU [G, N]."""

    labels: ImageLabels
    preds: ImagePredictions
    view: CustomerView
    info: ImageInfo

    def __post_init__(self) -> None:
        self.iou = box_iou(self.labels.boxes, self.preds.boxes)            # [G, N]

    def issue(self, kind: str, score: float, box, message: str, **extra) -> Issue:
        i = self.info
        return Issue(kind, round(float(score), 6), i.customer, i.image_id, i.file_name,
                     xyxy_to_xywh_list(box), message, i.source_image_id, i.source_file, **extra)

    def ann(self, g: int) -> int | None:
        a = int(self.labels.ann_ids[g])
        return a if a >= 0 else None


def _best(scores: np.ndarray, mask: np.ndarray) -> tuple[float, int]:
    """(max score where ``mask``, its index), or (0.0, -1) when the mask is empty."""
    if not mask.any():
        return 0.0, -1
    idx = np.flatnonzero(mask)
    n = int(idx[np.argmax(scores[idx])])
    return float(scores[n]), n


def wrong_class_issues(case: ImageCase, cfg: LintConfig) -> list[Issue]:
    """A wrong-class issue per box whose class the matching detections contradict."""
    view, p = case.view, case.preds
    asked = view.asked_classes()[p.classes] if len(p) else np.zeros(0, np.int64)    # [N]
    out = []
    for g, y in enumerate(case.labels.classes.tolist()):
        near = case.iou[g] >= cfg.match_iou
        support, _ = _best(p.scores, near & view.ancestors[p.classes, y])
        off_path = ~(view.ancestors[p.classes, y] | view.ancestors[y, p.classes])
        asked_off = (asked >= 0) & ~(view.ancestors[np.maximum(asked, 0), y]
                                     | view.ancestors[y, np.maximum(asked, 0)])
        contra, n = _best(p.scores, near & off_path & asked_off)
        if n < 0:
            continue
        label, suggested = view.label_name(y), view.label_name(int(asked[n]))
        k = view.class_names[p.classes[n]]
        case_issue = case.issue(
            WRONG_CLASS, contra * (1.0 - support), case.labels.boxes[g],
            f"wrong class? labeled {label}; the model says {suggested} ({k} {contra:.2f}, "
            f"{label} {support:.2f})", ann_id=case.ann(g), label=label, suggested=suggested,
            model_class=k, model_score=round(contra, 4),
            model_box=xyxy_to_xywh_list(p.boxes[n]), iou=round(float(case.iou[g, n]), 4))
        out.append(case_issue)
    return out


def bad_box_issues(case: ImageCase, cfg: LintConfig) -> tuple[list[Issue], set[int]]:
    """Bad-box issues, and the detections that are the better placement of a bad box (they
    are then no missing box)."""
    view, p, iou = case.view, case.preds, case.iou
    out, claimed = [], set()
    for g, y in enumerate(case.labels.classes.tolist()):
        on_path = view.ancestors[p.classes, y] | view.ancestors[y, p.classes]      # [N]
        good, _ = _best(p.scores, on_path & (iou[g] >= cfg.match_iou))
        others = np.delete(iou, g, axis=0)
        elsewhere = (others >= cfg.match_iou).any(axis=0) if len(others) else np.zeros(len(p), bool)
        band = on_path & (iou[g] >= cfg.bad_box_iou) & (iou[g] < cfg.match_iou) & ~elsewhere
        near, n = _best(p.scores, band)
        if n < 0 or near <= good:
            continue
        claimed.add(n)
        label = view.label_name(y)
        out.append(case.issue(
            BAD_BOX, near * (1.0 - good), case.labels.boxes[g],
            f"bad box? the model places this {label} elsewhere (IoU {iou[g, n]:.2f}, score "
            f"{near:.2f}; best match {good:.2f})", ann_id=case.ann(g), label=label,
            suggested=label, model_class=view.class_names[p.classes[n]],
            model_score=round(near, 4), model_box=xyxy_to_xywh_list(p.boxes[n]),
            iou=round(float(iou[g, n]), 4)))
    return out, claimed


def missing_candidates(case: ImageCase, cfg: LintConfig, claimed: set[int]) -> np.ndarray:
    """[N] bool: detections that may be missing boxes (see the module docstring)."""
    p = case.preds
    asked = case.view.asked_classes()[p.classes]
    free = (case.iou < cfg.match_iou).all(axis=0) if len(case.labels.classes) else \
        np.ones(len(p), bool)
    if len(case.labels.ignore):
        free &= (box_ioa(p.boxes, case.labels.ignore) < cfg.ignore_ioa).all(axis=1)
    free[list(claimed)] = False
    return (asked >= 0) & free


def missing_issues(case: ImageCase, cfg: LintConfig, claimed: set[int]) -> list[Issue]:
    """One missing-box issue per unlabeled object the customer labels (best detection)."""
    p, view = case.preds, case.view
    if not len(p):
        return []
    cand = np.flatnonzero(missing_candidates(case, cfg, claimed))
    depth = view.ancestors.sum(axis=1)[p.classes]
    order = cand[np.lexsort((-depth[cand], -p.scores[cand]))]     # best score, then deepest
    taken: list[int] = []
    out = []
    for n in order.tolist():
        if taken and (box_iou(p.boxes[[n]], p.boxes[taken]) >= cfg.match_iou).any():
            continue
        taken.append(n)
        asked = view.asked_class(int(p.classes[n]))
        suggested, k, s = view.label_name(asked), view.class_names[p.classes[n]], p.scores[n]
        out.append(case.issue(MISSING, s, p.boxes[n],
                              f"missing box? the model sees a {suggested} ({k} {s:.2f}) that no "
                              "box covers", suggested=suggested, model_class=k,
                              model_score=round(float(s), 4)))
    return out


def duplicate_issues(case: ImageCase, cfg: LintConfig) -> list[Issue]:
    """A duplicate issue per box that repeats an earlier box of its class."""
    lab = case.labels
    iou = box_iou(lab.boxes, lab.boxes)
    out = []
    for j in range(1, len(lab.classes)):
        same = (lab.classes[:j] == lab.classes[j]) & (iou[j, :j] >= cfg.duplicate_iou)
        if not same.any():
            continue
        i = int(np.flatnonzero(same)[np.argmax(iou[j, :j][same])])
        label = case.view.label_name(int(lab.classes[j]))
        out.append(case.issue(
            DUPLICATE, iou[j, i], lab.boxes[j],
            f"duplicate box? this {label} repeats annotation {case.ann(i)} (IoU {iou[j, i]:.2f})",
            ann_id=case.ann(j), label=label, iou=round(float(iou[j, i]), 4),
            other_ann_id=case.ann(i), model_box=xyxy_to_xywh_list(lab.boxes[i])))
    return out


def check_image(case: ImageCase, cfg: LintConfig) -> list[Issue]:
    """Every issue of one image scoring at least ``cfg.min_score``, unranked."""
    bad, claimed = bad_box_issues(case, cfg)
    issues = (wrong_class_issues(case, cfg) + bad + missing_issues(case, cfg, claimed)
              + duplicate_issues(case, cfg))
    return [i for i in issues if i.score >= cfg.min_score]
