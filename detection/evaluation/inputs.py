"""Check ground truth and predictions before evaluating; every problem names its record.

Reading and the checks are the shared COCO reader's (``taxdet.datasets.coco_io``: file size and
nesting limits, the top-level shape, integer ids in int64, no booleans for numbers, boxes,
unique category names); this module words them for evaluation. Errors raise
``EvalInputError`` (a ``ValueError``) naming the source, the record (image id, annotation
id, prediction index and key) and what is wrong. Problems that do not prevent a correct
evaluation (boxes far outside their image) are counted and returned as warnings.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator

import numpy as np

from taxdet.datasets.coco_io import (
    SINGULAR,
    CocoFormatError,
    DatasetError,
    check_bbox,
    check_bbox_numbers,
    check_category_names,
    check_finite,
    check_int,
    check_number,
    check_positive_int,
    coco_sections,
    column,
    duplicate_ids,
    fast_column,
    first_bad,
    record_id_name,
    strings,
)

MAX_LISTED = 5        # records named in one error message
OUTSIDE_FRACTION = 0.5  # a box side beyond the image by more than this fraction of its size


class EvalInputError(DatasetError, ValueError):
    """Ground truth or predictions that cannot be evaluated."""

    not_found = "{what} not found: {path}"


def _few(items: list) -> str:
    shown = ", ".join(map(str, items[:MAX_LISTED]))
    return shown + (f", ... ({len(items)} in total)" if len(items) > MAX_LISTED else "")


@contextlib.contextmanager
def _as_eval_errors(hint: str = "") -> Iterator[None]:
    """The shared reader's ``CocoFormatError`` as an ``EvalInputError`` (``hint`` appended)."""
    try:
        yield
    except CocoFormatError as exc:
        raise EvalInputError(f"{exc}{hint}") from None


def _ids(source: str, section: str, records: list) -> np.ndarray:
    """[n] int64 ids, unique (``duplicate <record> id N`` naming where otherwise)."""
    with _as_eval_errors():
        ids = column(source, section, records, "id", check_int, "i", name=record_id_name)
    dups = duplicate_ids(ids)
    if dups:
        dup, rows = dups[0]
        raise EvalInputError(f"{source}: duplicate {SINGULAR[section]} id {dup} "
                             f"({', '.join(f'{section}[{r}]' for r in rows[:MAX_LISTED])})")
    return ids


def _check_sizes(source: str, images: list, ids: np.ndarray) -> None:
    for key in ("width", "height"):
        if fast_column(images, key, "i", default=None, positive=True) is None:
            i = first_bad(images, key, check_positive_int, None).index
            raise EvalInputError(f"{source}: image id {ids[i]} needs positive 'width' and "
                                 f"'height' (integers), got {images[i].get('width')!r} x "
                                 f"{images[i].get('height')!r}")


def _check_references(source: str, anns: list, values: np.ndarray, known: np.ndarray,
                      key: str) -> None:
    unknown = np.flatnonzero(~np.isin(values, known))
    if len(unknown):
        i = int(unknown[0])
        raise EvalInputError(f"{source}: {record_id_name('annotations', i, anns[i])}: unknown "
                             f"{key} {values[i]}")


def _annotation_boxes(source: str, anns: list) -> np.ndarray:
    """[G, 4] float64 boxes: 4 finite numbers, width and height >= 0; ``area`` finite if set."""
    with _as_eval_errors():
        boxes = column(source, "annotations", anns, "bbox", check_bbox, "if", width=4,
                       name=record_id_name).astype(np.float64)
        column(source, "annotations", [a for a in anns if a.get("area") is not None], "area",
               check_finite, "if", name=record_id_name)
    negative = np.flatnonzero((boxes[:, 2:] < 0).any(axis=1))
    if len(negative):
        i = int(negative[0])
        raise EvalInputError(f"{source}: {record_id_name('annotations', i, anns[i])}: bbox "
                             f"{anns[i]['bbox']} has a negative width or height")
    return boxes


def check_ground_truth(gt: Any, source: str) -> list[str]:
    """Raise ``EvalInputError`` for a malformed COCO ground truth; return warnings."""
    with _as_eval_errors("; a COCO ground truth needs lists 'images', 'annotations' and "
                         "'categories'"):
        images, anns, cats = coco_sections(source, gt)
    image_ids, cat_ids = _ids(source, "images", images), _ids(source, "categories", cats)
    _ids(source, "annotations", anns)
    _check_sizes(source, images, image_ids)
    with _as_eval_errors():
        check_category_names(source, cat_ids, strings(source, "categories", cats, "name"))
        ann_images, ann_cats = (column(source, "annotations", anns, key, check_int, "i",
                                       name=record_id_name)
                                for key in ("image_id", "category_id"))
    _check_references(source, anns, ann_images, image_ids, "image_id")
    _check_references(source, anns, ann_cats, cat_ids, "category_id")
    boxes = _annotation_boxes(source, anns)
    sizes = {img["id"]: (img["width"], img["height"]) for img in images}
    outside = far_outside(boxes, ann_images, sizes)
    if outside.any():
        ids = [anns[i]["id"] for i in np.flatnonzero(outside)]
        return [f"{source}: {len(ids)} ground-truth boxes lie far outside their image "
                f"(mismatched image sizes?), annotation ids {_few(ids)}"]
    return []


@dataclass
class Predictions:
    """Detections as arrays, in input order. D detections.

    ``image_ids`` [D] int64, ``category_ids`` [D] int64, ``boxes`` [D, 4] float64 COCO
    ``x, y, w, h``, ``scores`` [D] float64.
    """

    image_ids: np.ndarray
    category_ids: np.ndarray
    boxes: np.ndarray
    scores: np.ndarray
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.scores)

    def select(self, keep: np.ndarray) -> Predictions:
        """The detections where ``keep`` [D] bool (or an index array) selects them."""
        return Predictions(self.image_ids[keep], self.category_ids[keep], self.boxes[keep],
                           self.scores[keep], self.warnings)


# key, value check, numpy dtype kinds read, width (bbox), dtype returned
PREDICTION_KEYS: tuple[tuple[str, Callable[[Any], str | None], str, int, type], ...] = (
    ("image_id", check_int, "i", 0, np.int64), ("category_id", check_int, "i", 0, np.int64),
    ("bbox", check_bbox_numbers, "if", 4, np.float64), ("score", check_number, "if", 0, np.float64))


def _prediction_column(preds: list, source: str, key: str, check: Callable[[Any], str | None],
                       kinds: str, width: int, dtype: type) -> np.ndarray:
    """``key`` of every prediction (NaN/inf allowed: ``_check_values`` reports them), or an
    error naming the first bad prediction's index and the key."""
    arr = fast_column(preds, key, kinds, width, finite=False)
    if arr is not None:
        return arr.astype(dtype)
    bad = first_bad(preds, key, check)
    where = f"{source}: prediction [{bad.index}]"
    if bad.kind == "object":
        raise EvalInputError(f"{where}: expected an object, got {bad.record!r:.80}")
    if bad.kind == "missing":
        raise EvalInputError(f"{where}: missing {key!r} in {bad.record!r:.120}")
    raise EvalInputError(f"{where}: {key} {bad.problem}")


def _check_values(box: np.ndarray, score: np.ndarray, source: str) -> None:
    bad_box = ~np.isfinite(box).all(axis=1) | (box[:, 2:] < 0).any(axis=1)
    bad_score = ~np.isfinite(score) | (score < 0)
    for bad, what in ((bad_box, "bbox (NaN/inf or negative width/height)"),
                      (bad_score, "score (NaN/inf or negative)")):
        if bad.any():
            idx = np.flatnonzero(bad)
            raise EvalInputError(f"{source}: {len(idx)} predictions with an invalid {what}, "
                                 f"at index {_few(idx.tolist())}; first: "
                                 f"bbox {box[idx[0]].tolist()} score {score[idx[0]]}")


def _check_known(values: np.ndarray, known: set[int], source: str, key: str) -> None:
    unknown = np.setdiff1d(np.unique(values), np.fromiter(known, dtype=np.int64, count=len(known)))
    if len(unknown):
        first = [int(np.flatnonzero(values == u)[0]) for u in unknown[:MAX_LISTED]]
        raise EvalInputError(f"{source}: predictions with {key} not in the ground truth: "
                             f"{_few(unknown.tolist())} (first at index {_few(first)})")


def far_outside(boxes: np.ndarray, image_ids: np.ndarray, sizes: dict[int, tuple]) -> np.ndarray:
    """[N] bool: boxes [N, 4] (x, y, w, h) reaching beyond their image by over half its size."""
    if not len(boxes):
        return np.zeros(0, dtype=bool)
    ids = np.fromiter(sizes, dtype=np.int64, count=len(sizes))
    wh = np.array(list(sizes.values()), dtype=np.float64).reshape(-1, 2)
    order = np.argsort(ids)
    w, h = wh[order][np.searchsorted(ids[order], image_ids)].T
    f = OUTSIDE_FRACTION
    return ((boxes[:, 0] < -f * w) | (boxes[:, 1] < -f * h)
            | (boxes[:, 0] + boxes[:, 2] > (1 + f) * w) | (boxes[:, 1] + boxes[:, 3] > (1 + f) * h))


def check_predictions(preds: list, sizes: dict[int, tuple], category_ids: set[int],
                      source: str) -> Predictions:
    """Validate COCO results against the ground truth's images (id -> (w, h)) and categories.

    Raises ``EvalInputError`` for malformed records, unknown image or category ids and
    NaN/inf/negative boxes or scores; counts boxes far outside their image as a warning.
    """
    if not isinstance(preds, list):
        raise EvalInputError(f"{source}: predictions must be a JSON list of COCO results, "
                             f"got {type(preds).__name__}")
    img, cat, box, score = (_prediction_column(preds, source, *spec) for spec in PREDICTION_KEYS)
    _check_values(box, score, source)
    _check_known(img, set(sizes), source, "image_id")
    _check_known(cat, category_ids, source, "category_id")
    out = Predictions(img, cat, box, score)
    outside = far_outside(box, img, sizes)
    if outside.any():
        idx = np.flatnonzero(outside)
        out.warnings.append(f"{source}: {len(idx)} predicted boxes lie far outside their image "
                            f"(mismatched image sizes?), at index {_few(idx.tolist())}")
    return out
