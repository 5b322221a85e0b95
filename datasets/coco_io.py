"""Read a COCO annotation file into validated numpy columns.

Every problem raises a ``DatasetError`` whose message names the file and the
record (``images[3]``, ``annotation id 17 (image id 4)``) and says what is wrong.
Records are checked column by column with numpy (fast path); only when a column
fails is the file scanned record by record to name the first bad one.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from supertax.errors import InputError

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
SECTIONS = ("images", "annotations", "categories")
SINGULAR = {"images": "image", "annotations": "annotation", "categories": "category"}


class DatasetError(InputError):
    """A dataset file, record or image that cannot be used (message names file and record)."""


class CocoFormatError(DatasetError):
    """File missing, not JSON, not COCO-shaped, or a record with a bad value."""


class DuplicateIdError(CocoFormatError):
    """Two images, annotations or categories of one file share an id."""


@dataclass
class CocoImages:
    """Image records: ids [N] int64, width/height [N] int64, file names, optional extra keys."""

    ids: np.ndarray
    file_names: list[str]
    width: np.ndarray
    height: np.ndarray
    extra: dict[str, list] = field(default_factory=dict)


@dataclass
class CocoAnnotations:
    """Annotation records: ids / image_ids / category_ids [M] int64, bbox [M, 4] float64 xywh,
    iscrowd [M] bool, optional extra keys."""

    ids: np.ndarray
    image_ids: np.ndarray
    category_ids: np.ndarray
    bbox: np.ndarray
    iscrowd: np.ndarray
    extra: dict[str, list] = field(default_factory=dict)


@dataclass
class CocoFile:
    """One validated COCO file; ``categories`` maps category id -> name."""

    path: str
    images: CocoImages
    annotations: CocoAnnotations
    categories: dict[int, str]
    info: dict = field(default_factory=dict)


# ---------------------------------------------------------------- value checks (slow path)
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool) and INT64_MIN <= v <= INT64_MAX


def check_int(v: Any) -> str | None:
    return None if _is_int(v) else f"must be an integer, got {v!r}"


def check_positive_int(v: Any) -> str | None:
    return None if _is_int(v) and v > 0 else f"must be a positive integer, got {v!r}"


def check_name(v: Any) -> str | None:
    return None if isinstance(v, str) and v.strip() else f"must be a non-empty string, got {v!r}"


def check_crowd(v: Any) -> str | None:
    return None if v in (0, 1) and not isinstance(v, float) else f"must be 0 or 1, got {v!r}"


def check_bbox(v: Any) -> str | None:
    ok = (isinstance(v, list) and len(v) == 4
          and all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)
                  for x in v))
    return None if ok else f"must be 4 finite numbers [x, y, width, height], got {v!r}"


# ---------------------------------------------------------------- record naming
def record_name(section: str, i: int, rec: Any) -> str:
    """``annotation id 17 (image id 4)``, ``image id 3``, or ``annotations[5]`` without an id."""
    if not isinstance(rec, dict) or not _is_int(rec.get("id")):
        return f"{section}[{i}]"
    name = f"{SINGULAR[section]} id {rec['id']}"
    if section == "annotations" and _is_int(rec.get("image_id")):
        name += f" (image id {rec['image_id']})"
    return name


_MISSING = object()


def _first_bad(path: str, section: str, records: list, key: str,
               check: Callable[[Any], str | None], default: Any) -> CocoFormatError:
    """Scan records one by one and describe the first bad ``key`` value."""
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            return CocoFormatError(f"{path}: {section}[{i}] must be a JSON object, "
                                   f"got {type(rec).__name__} {rec!r}"[:300])
        value = rec.get(key, default)
        if value is _MISSING:
            return CocoFormatError(f"{path}: {record_name(section, i, rec)}: missing key {key!r}")
        problem = check(value)
        if problem:
            return CocoFormatError(f"{path}: {record_name(section, i, rec)}: {key} {problem}")
    return CocoFormatError(f"{path}: {section}: bad values for {key!r}")


def column(path: str, section: str, records: list, key: str, check: Callable[[Any], str | None],
           kinds: str, width: int = 0, default: Any = _MISSING, positive: bool = False
           ) -> np.ndarray:
    """One key of every record as an array; ``kinds`` are the accepted numpy dtype kinds.

    ``width`` > 0 asks for [n, width] (bbox). Values must be finite (and > 0 if ``positive``).
    """
    shape = (len(records), width) if width else (len(records),)
    if not records:
        return np.zeros(shape, np.float64 if "f" in kinds else np.int64)
    try:
        values = ([r[key] for r in records] if default is _MISSING
                  else [r.get(key, default) for r in records])
        arr = np.array(values)
    except (KeyError, TypeError, AttributeError, ValueError, OverflowError):
        arr = None
    if (arr is None or arr.dtype.kind not in kinds or arr.shape != shape
            or (arr.dtype.kind == "f" and not np.isfinite(arr).all())
            or (positive and not (arr > 0).all())):
        raise _first_bad(path, section, records, key, check, default)
    return arr


def value_column(path: str, section: str, ids: np.ndarray, values: list, key: str,
                 check: Callable[[Any], str | None], kinds: str) -> np.ndarray:
    """Like ``column`` for values already pulled out of the records (extra keys);
    errors name the record by its id (``ids`` [n], same order as ``values``)."""
    try:
        arr = np.array(values) if values else np.zeros(0, np.float64 if "f" in kinds else np.int64)
    except (TypeError, ValueError, OverflowError):
        arr = None
    if (arr is None or arr.dtype.kind not in kinds or arr.shape != (len(values),)
            or (arr.dtype.kind == "f" and not np.isfinite(arr).all())):
        for i, v in enumerate(values):
            problem = "is missing" if v is None else check(v)
            if problem:
                raise CocoFormatError(f"{path}: {SINGULAR[section]} id {ids[i]}: {key} {problem}")
        raise CocoFormatError(f"{path}: {section}: bad values for {key!r}")
    return arr


def strings(path: str, section: str, records: list, key: str) -> list[str]:
    """One non-empty string key of every record."""
    try:
        values = [r[key] for r in records]
        ok = all(type(v) is str and v.strip() for v in values)
    except (KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise _first_bad(path, section, records, key, check_name, _MISSING)
    return values


def check_unique(path: str, section: str, ids: np.ndarray) -> None:
    """Raise ``DuplicateIdError`` listing repeated ids and their positions (up to 5)."""
    uniq, first, counts = np.unique(ids, return_index=True, return_counts=True)
    if len(uniq) == len(ids):
        return
    dups = uniq[counts > 1]
    parts = []
    for d in dups[:5]:
        where = ", ".join(f"{section}[{i}]" for i in np.flatnonzero(ids == d)[:3])
        parts.append(f"{d} ({where})")
    more = f" and {len(dups) - 5} more" if len(dups) > 5 else ""
    raise DuplicateIdError(f"{path}: duplicate {SINGULAR[section]} id(s): {'; '.join(parts)}"
                           f"{more} -- ids must be unique (pycocotools would silently keep only "
                           "the last)")


# ---------------------------------------------------------------- file level
def load_json(path: str | Path) -> Any:
    """Parse a JSON file; errors name the file (and line/column for syntax errors)."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise CocoFormatError(f"{path}: annotation file not found") from None
    except OSError as exc:
        raise CocoFormatError(f"{path}: cannot read annotation file: "
                              f"{exc.strerror or exc}") from None
    try:
        return json.loads(raw)
    except json.JSONDecodeError as exc:
        raise CocoFormatError(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} "
                              f"column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise CocoFormatError(f"{path}: not valid JSON: not UTF-8 text ({exc.reason} at byte "
                              f"{exc.start})") from None


def coco_sections(path: str, data: Any) -> tuple[list, list, list]:
    """The three top-level lists, or ``CocoFormatError`` saying which is missing or mistyped."""
    if not isinstance(data, dict):
        raise CocoFormatError(f"{path}: not a COCO file: the top level must be a JSON object with "
                              f"'images', 'annotations' and 'categories' lists, "
                              f"got {type(data).__name__}")
    for key in SECTIONS:
        if key not in data:
            raise CocoFormatError(f"{path}: not a COCO file: missing top-level list {key!r}")
        if not isinstance(data[key], list):
            raise CocoFormatError(f"{path}: not a COCO file: {key!r} must be a list, "
                                  f"got {type(data[key]).__name__}")
    return data["images"], data["annotations"], data["categories"]


def read_images(path: str, recs: list, extra_keys: tuple[str, ...] = ()) -> CocoImages:
    ids = column(path, "images", recs, "id", check_int, "i")
    check_unique(path, "images", ids)
    width, height = (column(path, "images", recs, key, check_positive_int, "i", positive=True)
                     for key in ("width", "height"))
    return CocoImages(ids, strings(path, "images", recs, "file_name"), width, height,
                      {k: [r.get(k) for r in recs] for k in extra_keys})


def read_annotations(path: str, recs: list, extra_keys: tuple[str, ...] = ()) -> CocoAnnotations:
    ids = column(path, "annotations", recs, "id", check_int, "i")
    check_unique(path, "annotations", ids)
    image_ids = column(path, "annotations", recs, "image_id", check_int, "i")
    category_ids = column(path, "annotations", recs, "category_id", check_int, "i")
    bbox = column(path, "annotations", recs, "bbox", check_bbox, "if", width=4)
    crowd = column(path, "annotations", recs, "iscrowd", check_crowd, "ib", default=0)
    if len(crowd) and (crowd.min() < 0 or crowd.max() > 1):
        raise _first_bad(path, "annotations", recs, "iscrowd", check_crowd, 0)
    return CocoAnnotations(ids, image_ids, category_ids, bbox.astype(np.float64),
                           crowd.astype(bool), {k: [r.get(k) for r in recs] for k in extra_keys})


def image_rows(image_ids: np.ndarray, ann_image_ids: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Row of each annotation's image [M] int64 (arbitrary where absent) and whether the
    image id exists [M] bool."""
    if not len(image_ids):
        return np.zeros(len(ann_image_ids), np.int64), np.zeros(len(ann_image_ids), bool)
    sorter = np.argsort(image_ids)
    pos = np.minimum(np.searchsorted(image_ids, ann_image_ids, sorter=sorter), len(image_ids) - 1)
    rows = sorter[pos]
    return rows, image_ids[rows] == ann_image_ids


def xywh_to_xyxy(bbox: np.ndarray) -> np.ndarray:
    """[n, 4] ``x, y, w, h`` -> [n, 4] ``x1, y1, x2, y2`` (same dtype)."""
    return np.concatenate([bbox[:, :2], bbox[:, :2] + bbox[:, 2:]], 1)


def xyxy_to_xywh(boxes: np.ndarray) -> np.ndarray:
    """[n, 4] ``x1, y1, x2, y2`` -> [n, 4] float64 ``x, y, w, h`` (exact for float32 input)."""
    boxes = boxes.astype(np.float64)
    return np.concatenate([boxes[:, :2], boxes[:, 2:] - boxes[:, :2]], 1)


def read_categories(path: str, recs: list) -> dict[int, str]:
    ids = column(path, "categories", recs, "id", check_int, "i")
    check_unique(path, "categories", ids)
    return dict(zip(ids.tolist(), strings(path, "categories", recs, "name")))


def read_coco(path: str | Path, image_keys: tuple[str, ...] = (),
              annotation_keys: tuple[str, ...] = ()) -> CocoFile:
    """Read and validate one COCO file (``image_keys`` / ``annotation_keys``: extra keys to keep).

    Checks: JSON syntax, the three top-level lists, integer ids unique per section,
    non-empty ``file_name``, positive integer ``width``/``height``, ``bbox`` of 4
    finite numbers, ``iscrowd`` 0/1 (default 0), and that every annotation's
    ``category_id`` is declared. Annotations pointing at a missing image id are NOT
    an error here (the merger drops and counts them).
    """
    path = str(path)
    data = load_json(path)
    image_recs, ann_recs, cat_recs = coco_sections(path, data)
    images = read_images(path, image_recs, image_keys)
    anns = read_annotations(path, ann_recs, annotation_keys)
    categories = read_categories(path, cat_recs)
    known = np.isin(anns.category_ids, np.fromiter(categories, np.int64, len(categories)))
    if not known.all():
        i = int(np.flatnonzero(~known)[0])
        raise CocoFormatError(f"{path}: {record_name('annotations', i, ann_recs[i])}: category_id "
                              f"{anns.category_ids[i]} is not in the file's categories "
                              f"(ids: {', '.join(map(str, sorted(categories))) or 'none'})")
    info = data.get("info") if isinstance(data.get("info"), dict) else {}
    return CocoFile(path, images, anns, categories, info)
