"""Scoring a label checker's flags against injected errors: hits, precision / recall at k,
per-image AUROC.

A ``Flag`` is one suspected error as any checker gives it (the linter's issues, cleanlab's
per-box scores), in the customer's ids: image id, annotation id (for a flagged ground-truth
box) or box ``[x, y, w, h]`` (for a missing box). A flag *hits* an injected error:

* of its own type (per-type metrics): ``missing_box`` when its box has IoU >= 0.5 with the
  dropped box; ``wrong_class`` / ``bad_box`` when it names the changed annotation;
  ``duplicate_box`` when it names the copy or the original;
* of any type (box-level precision): when it names the erroneous annotation, or, as a missing
  box, covers a dropped box or the true place of a moved one.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

import numpy as np

from benchmarks.label_noise import InjectedError
from taxdet.detection.linting.issues import BAD_BOX, DUPLICATE, MISSING
from taxdet.detection.linting.matching import box_iou

HIT_IOU = 0.5


@dataclass
class Flag:
    type: str
    score: float
    customer: str
    image_id: int                   # the customer's image id
    ann_id: int | None = None
    box: list[float] | None = None  # [x, y, w, h]
    column: int = -1                # missing_box: the model's super class


def _xyxy(b: list[float]) -> np.ndarray:
    return np.array([[b[0], b[1], b[0] + b[2], b[1] + b[3]]], np.float64)


def _covers(box: list[float] | None, target: list[float]) -> bool:
    return box is not None and float(box_iou(_xyxy(box), _xyxy(target))[0, 0]) >= HIT_IOU


class ErrorIndex:
    """Injected errors by (customer, image id), for hit tests."""

    def __init__(self, errors: list[InjectedError]):
        self.errors = errors
        self.by_image: dict[tuple[str, int], list[int]] = defaultdict(list)
        for i, e in enumerate(errors):
            self.by_image[e.customer, e.image_id].append(i)

    def typed_hits(self, flag: Flag) -> list[int]:
        """Errors of the flag's own type that it hits."""
        out = []
        for i in self.by_image.get((flag.customer, flag.image_id), []):
            e = self.errors[i]
            if e.type != flag.type:
                continue
            if e.type == MISSING:
                ok = flag.ann_id is None and _covers(flag.box, e.orig_box)
            elif e.type == DUPLICATE:
                ok = flag.ann_id in (e.ann_id, e.other_ann_id)
            else:
                ok = flag.ann_id == e.ann_id
            if ok:
                out.append(i)
        return out

    def any_hit(self, flag: Flag) -> bool:
        """True if the flag points at any injected error (module docstring)."""
        for i in self.by_image.get((flag.customer, flag.image_id), []):
            e = self.errors[i]
            if flag.ann_id is not None and flag.ann_id in (e.ann_id, e.other_ann_id):
                if e.type != MISSING:
                    return True
            if flag.ann_id is None and e.type in (MISSING, BAD_BOX) and _covers(flag.box,
                                                                                e.orig_box):
                return True
        return False

    def images_with_errors(self) -> set[tuple[str, int]]:
        return set(self.by_image)


def ranked(flags: list[Flag], kind: str | None = None) -> list[Flag]:
    """Flags (of one type, or all) by score, highest first."""
    chosen = [f for f in flags if kind is None or f.type == kind]
    return sorted(chosen, key=lambda f: -f.score)


def precision_recall_at_k(flags: list[Flag], index: ErrorIndex, kind: str, k: int
                          ) -> tuple[float, float]:
    """(share of the top k flags of type ``kind`` that hit an error of that type, share of the
    errors of that type hit by them); (nan, nan) when there is none or k is 0."""
    total = sum(e.type == kind for e in index.errors)
    if not total or k <= 0:
        return float("nan"), float("nan")
    top = ranked(flags, kind)[:k]
    found: set[int] = set()
    hits = 0
    for f in top:
        h = index.typed_hits(f)
        hits += bool(h)
        found.update(h)
    return hits / k, len(found) / total


def box_precision_at(flags: list[Flag], index: ErrorIndex, k: int = 100) -> float:
    """Share of the top ``k`` flags (all types) that point at an injected error."""
    top = ranked(flags)[:k]
    return sum(index.any_hit(f) for f in top) / k if k else float("nan")


def auroc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` [N] for ``positive`` [N] bool (ties count half;
    nan when a class is empty)."""
    scores, positive = np.asarray(scores, np.float64), np.asarray(positive, bool)
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if not n_pos or not n_neg:
        return float("nan")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):                      # average ranks over ties
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i:j + 1]] = (i + j) / 2 + 1
        i = j + 1
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
