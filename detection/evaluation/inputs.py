"""Check ground truth and predictions before evaluating; every problem names its record.

Errors raise ``EvalInputError`` (a ``ValueError``) naming the source, the record (image id,
annotation id, prediction index) and what is wrong. Problems that do not prevent a correct
evaluation (boxes far outside their image) are counted and returned as warnings.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasets.coco_io import DatasetError

MAX_LISTED = 5        # records named in one error message
OUTSIDE_FRACTION = 0.5  # a box side beyond the image by more than this fraction of its size


class EvalInputError(DatasetError, ValueError):
    """Ground truth or predictions that cannot be evaluated."""


def load_json(src: dict | list | str | Path, what: str) -> tuple[dict | list, str]:
    """(parsed object, name for messages) from a path or an already parsed object."""
    if isinstance(src, (str, Path)):
        try:
            with open(src) as f:
                return json.load(f), str(src)
        except FileNotFoundError:
            raise EvalInputError(f"{what} file not found: {src}") from None
        except json.JSONDecodeError as e:
            raise EvalInputError(f"{src}: not valid JSON ({e})") from None
    return src, f"<{what}>"


def _few(items: list) -> str:
    shown = ", ".join(map(str, items[:MAX_LISTED]))
    return shown + (f", ... ({len(items)} in total)" if len(items) > MAX_LISTED else "")


def _is_number(x) -> bool:
    return isinstance(x, (int, float, np.integer, np.floating)) and not isinstance(x, bool)


def _check_box(box, where: str) -> None:
    if not (isinstance(box, (list, tuple)) and len(box) == 4 and all(map(_is_number, box))):
        raise EvalInputError(f"{where}: bbox must be 4 numbers [x, y, w, h], got {box!r}")
    if not all(map(math.isfinite, box)):
        raise EvalInputError(f"{where}: bbox {box} is not finite")
    if box[2] < 0 or box[3] < 0:
        raise EvalInputError(f"{where}: bbox {box} has a negative width or height")


def _unique_ids(records: list, key: str, source: str, what: str) -> None:
    seen: set = set()
    for i, r in enumerate(records):
        if not isinstance(r, dict) or not isinstance(r.get(key), int) or isinstance(r[key], bool):
            raise EvalInputError(f"{source}: {what}[{i}] needs an integer {key!r}, got {r!r:.120}")
        if r[key] in seen:
            raise EvalInputError(f"{source}: duplicate {what} id {r[key]}")
        seen.add(r[key])


def check_ground_truth(gt: dict, source: str) -> list[str]:
    """Raise ``EvalInputError`` for a malformed COCO ground truth; return warnings."""
    if not isinstance(gt, dict) or not all(isinstance(gt.get(k), list)
                                           for k in ("images", "annotations", "categories")):
        raise EvalInputError(f"{source}: a COCO ground truth needs lists 'images', "
                             "'annotations' and 'categories'")
    _unique_ids(gt["images"], "id", source, "image")
    _unique_ids(gt["categories"], "id", source, "category")
    _unique_ids(gt["annotations"], "id", source, "annotation")
    for img in gt["images"]:
        if not all(_is_number(img.get(k)) and img[k] > 0 for k in ("width", "height")):
            raise EvalInputError(f"{source}: image id {img['id']} needs positive 'width' and "
                                 f"'height', got {img.get('width')!r} x {img.get('height')!r}")
    names = [c.get("name") for c in gt["categories"]]
    if not all(isinstance(n, str) for n in names) or len(set(names)) != len(names):
        raise EvalInputError(f"{source}: category names must be unique strings, got {names}")
    images = {img["id"]: img for img in gt["images"]}
    cats = {c["id"] for c in gt["categories"]}
    for a in gt["annotations"]:
        where = f"{source}: annotation id {a['id']}"
        if a.get("image_id") not in images:
            raise EvalInputError(f"{where}: unknown image_id {a.get('image_id')!r}")
        if a.get("category_id") not in cats:
            raise EvalInputError(f"{where}: unknown category_id {a.get('category_id')!r}")
        _check_box(a.get("bbox"), where)
        if a.get("area") is not None and not (_is_number(a["area"]) and math.isfinite(a["area"])):
            raise EvalInputError(f"{where}: area must be a finite number, got {a['area']!r}")
    sizes = {i: (img["width"], img["height"]) for i, img in images.items()}
    boxes = np.array([a["bbox"] for a in gt["annotations"]], dtype=np.float64).reshape(-1, 4)
    img_ids = np.array([a["image_id"] for a in gt["annotations"]], dtype=np.int64)
    outside = far_outside(boxes, img_ids, sizes)
    if outside.any():
        ids = [gt["annotations"][i]["id"] for i in np.flatnonzero(outside)]
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

    def select(self, keep: np.ndarray) -> "Predictions":
        """The detections where ``keep`` [D] bool (or an index array) selects them."""
        return Predictions(self.image_ids[keep], self.category_ids[keep], self.boxes[keep],
                           self.scores[keep], self.warnings)


def _arrays(preds: list) -> tuple[np.ndarray, ...] | None:
    """Fast path: four arrays, or None when some record is malformed (then locate it)."""
    try:
        img = np.array([p["image_id"] for p in preds], dtype=np.int64)
        cat = np.array([p["category_id"] for p in preds], dtype=np.int64)
        box = np.array([p["bbox"] for p in preds], dtype=np.float64).reshape(len(preds), 4)
        score = np.array([p["score"] for p in preds], dtype=np.float64)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None
    id_types = {type(p["image_id"]) for p in preds} | {type(p["category_id"]) for p in preds}
    score_types = {type(p["score"]) for p in preds}
    ok = all(map(_is_int_type, id_types)) and all(
        _is_int_type(t) or issubclass(t, (float, np.floating)) for t in score_types)
    return (img, cat, box, score) if ok else None


def _is_int_type(t: type) -> bool:
    return issubclass(t, (int, np.integer)) and not issubclass(t, bool)


def _locate_bad_record(preds: list, source: str) -> None:
    for i, p in enumerate(preds):
        where = f"{source}: prediction [{i}]"
        if not isinstance(p, dict):
            raise EvalInputError(f"{where}: expected an object, got {p!r:.80}")
        for key in ("image_id", "category_id", "bbox", "score"):
            if key not in p:
                raise EvalInputError(f"{where}: missing {key!r} in {p!r:.120}")
        for key in ("image_id", "category_id"):
            if not _is_int_type(type(p[key])):
                raise EvalInputError(f"{where}: {key} must be an integer, got {p[key]!r}")
        _check_box(p["bbox"], where)
        if not _is_number(p["score"]):
            raise EvalInputError(f"{where}: score must be a number, got {p['score']!r}")
    raise EvalInputError(f"{source}: malformed predictions")  # pragma: no cover


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
    arrays = _arrays(preds)
    if arrays is None:
        _locate_bad_record(preds, source)
    img, cat, box, score = arrays
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
