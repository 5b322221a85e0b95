"""Read COCO annotation files: the one reader behind the merger, the evaluator and prediction.

Every problem raises a ``DatasetError`` whose message names the file and the
record (``images[3]``, ``annotation id 17 (image id 4)``) and says what is wrong.
Records are checked column by column with numpy (fast path); only when a column
fails is the file scanned record by record to name the first bad one. Both paths
reject booleans where numbers are expected (JSON ``true`` is not ``1``) and integers
outside int64.

Files are read with ``taxdet.core.json_files.load_json`` (size and nesting limits).

The evaluator (``taxdet.detection.evaluation.inputs``) and prediction
(``taxdet.datasets.images``) build on these primitives: ``coco_sections``,
``fast_column`` + ``first_bad`` (or ``column``), the ``check_*`` value checks, ``duplicate_ids`` and
``check_category_names``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path
from typing import Any, Callable

import numpy as np

from taxdet.core.json_files import FileFormatError, load_json

INT64_MIN, INT64_MAX = -(2 ** 63), 2 ** 63 - 1
SECTIONS = ("images", "annotations", "categories")
IMAGE_BASE_KEYS = ("id", "file_name", "width", "height")  # the image fields every reader needs
SINGULAR = {"images": "image", "annotations": "annotation", "categories": "category"}


class DatasetError(FileFormatError):
    """A dataset file, record or image that cannot be used (message names file and record)."""


class CocoFormatError(DatasetError):
    """File missing, not JSON, not COCO-shaped, or a record with a bad value."""


class DuplicateIdError(CocoFormatError):
    """Two images, annotations or categories of one file share an id."""


@dataclass
class CocoImages:
    """Image records: ids [N] int64, width/height [N] int64, file names, optional extra keys.

    ``other`` (only when asked for): per image, its every other field (not a base key nor an
    ``extra`` key), e.g. ``date_captured``, as read.
    """

    ids: np.ndarray
    file_names: list[str]
    width: np.ndarray
    height: np.ndarray
    extra: dict[str, list] = field(default_factory=dict)
    other: list[dict] | None = None


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
def _is_integral(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


def _is_int(v: Any) -> bool:
    return _is_integral(v) and INT64_MIN <= v <= INT64_MAX


def _is_number(v: Any) -> bool:
    """int within int64 or float (not bool): exactly what numpy reads as int64 / float64."""
    return _is_int(v) or isinstance(v, (float, np.floating))


def _out_of_range(v: Any) -> str | None:
    return f"is out of range (int64): {v}" if _is_integral(v) and not _is_int(v) else None


def check_int(v: Any) -> str | None:
    return None if _is_int(v) else _out_of_range(v) or f"must be an integer, got {v!r}"


def check_positive_int(v: Any) -> str | None:
    if _is_int(v) and v > 0:
        return None
    return _out_of_range(v) or f"must be a positive integer, got {v!r}"


def check_number(v: Any) -> str | None:
    return None if _is_number(v) else _out_of_range(v) or f"must be a number, got {v!r}"


def check_finite(v: Any) -> str | None:
    if _is_number(v) and math.isfinite(v):
        return None
    return _out_of_range(v) or f"must be a finite number, got {v!r}"


def check_name(v: Any) -> str | None:
    if not (isinstance(v, str) and v.strip()):
        return f"must be a non-empty string, got {v!r}"
    return f"must not contain a NUL character, got {v!r}" if "\0" in v else None


def check_crowd(v: Any) -> str | None:
    return None if v in (0, 1) and not isinstance(v, float) else f"must be 0 or 1, got {v!r}"


def _bbox_problem(v: Any, finite: bool) -> str | None:
    ok = (isinstance(v, (list, tuple)) and len(v) == 4
          and all(_is_number(x) and (math.isfinite(x) or not finite) for x in v))
    what = "finite numbers" if finite else "numbers"
    return None if ok else f"must be 4 {what} [x, y, width, height], got {v!r}"


def check_bbox(v: Any) -> str | None:
    return _bbox_problem(v, finite=True)


def check_bbox_numbers(v: Any) -> str | None:
    """Like ``check_bbox`` but NaN/inf pass (a vectorised check reports them, e.g. for
    predictions)."""
    return _bbox_problem(v, finite=False)


# ---------------------------------------------------------------- record naming
def record_name(section: str, i: int, rec: Any, with_image: bool = True) -> str:
    """``annotation id 17 (image id 4)`` (``with_image``), ``image id 3``, or ``annotations[5]``
    without an id."""
    if not isinstance(rec, dict) or not _is_int(rec.get("id")):
        return f"{section}[{i}]"
    name = f"{SINGULAR[section]} id {rec['id']}"
    if with_image and section == "annotations" and _is_int(rec.get("image_id")):
        name += f" (image id {rec['image_id']})"
    return name


def record_id_name(section: str, i: int, rec: Any) -> str:
    """``annotation id 17``: records by their own id only, ``annotations[5]`` without one."""
    return record_name(section, i, rec, with_image=False)


# ---------------------------------------------------------------- columns
_MISSING = object()
Namer = Callable[[str, int, Any], str]


def _has_bool(values: list, nested: bool) -> bool:
    """Some value (or, ``nested``, some item of a value) is a bool: numpy reads ``True`` as 1."""
    types = set(map(type, chain.from_iterable(values) if nested else values))
    return bool in types or np.bool_ in types


def as_array(values: list, kinds: str, width: int = 0, finite: bool = True,
             positive: bool = False) -> np.ndarray | None:
    """``values`` as an array of a numpy dtype kind in ``kinds`` and shape [n] (or [n, width]),
    or None when they are not all such values (booleans only where ``kinds`` has ``b``).
    ``finite``: float values must be finite; ``positive``: values must be > 0."""
    shape = (len(values), width) if width else (len(values),)
    if not values:
        return np.zeros(shape, np.float64 if "f" in kinds else np.int64)
    try:
        arr = np.array(values)
    except (TypeError, ValueError, OverflowError):
        return None
    if (arr.dtype.kind not in kinds or arr.shape != shape
            or (finite and arr.dtype.kind == "f" and not np.isfinite(arr).all())
            or (positive and not (arr > 0).all())
            or ("b" not in kinds and _has_bool(values, width > 0))):
        return None
    return arr


def fast_column(records: list, key: str, kinds: str, width: int = 0, default: Any = _MISSING,
                finite: bool = True, positive: bool = False) -> np.ndarray | None:
    """Fast path: ``key`` of every record as an array (see ``as_array``), or None when some
    record is not an object, lacks the key (without ``default``) or has a bad value."""
    try:
        values = ([r[key] for r in records] if default is _MISSING
                  else [r.get(key, default) for r in records])
    except (KeyError, TypeError, AttributeError):
        return None
    return as_array(values, kinds, width, finite, positive)


@dataclass(frozen=True)
class BadValue:
    """The first bad record of a column: ``kind`` is ``object`` (the record is not a JSON
    object), ``missing`` (no such key) or ``value`` (``problem`` says what is wrong)."""

    index: int
    record: Any
    kind: str
    problem: str = ""


def first_bad(records: list, key: str, check: Callable[[Any], str | None],
              default: Any = _MISSING) -> BadValue:
    """Slow path: scan the records one by one for the first bad ``key`` value.

    Only called after ``fast_column`` failed; the ``check_*`` functions accept exactly the
    values numpy reads, so some record is bad."""
    for i, rec in enumerate(records):
        if not isinstance(rec, dict):
            return BadValue(i, rec, "object")
        value = rec.get(key, default)
        if value is _MISSING:
            return BadValue(i, rec, "missing")
        problem = check(value)
        if problem:
            return BadValue(i, rec, "value", problem)
    raise AssertionError(f"{check.__name__} accepts every {key!r} but the fast path did not")


def bad_value_error(path: str, section: str, key: str, bad: BadValue,
                    name: Namer = record_name) -> CocoFormatError:
    """The error for ``bad``: ``<path>: <record>: <key> <problem>``."""
    if bad.kind == "object":
        return CocoFormatError(f"{path}: {section}[{bad.index}] must be a JSON object, "
                               f"got {type(bad.record).__name__} {bad.record!r}"[:300])
    where = f"{path}: {name(section, bad.index, bad.record)}"
    if bad.kind == "missing":
        return CocoFormatError(f"{where}: missing key {key!r}")
    return CocoFormatError(f"{where}: {key} {bad.problem}")


def column(path: str, section: str, records: list, key: str, check: Callable[[Any], str | None],
           kinds: str, width: int = 0, default: Any = _MISSING, positive: bool = False,
           name: Namer = record_name) -> np.ndarray:
    """One key of every record as an array; ``kinds`` are the accepted numpy dtype kinds.

    ``width`` > 0 asks for [n, width] (bbox). Values must be finite (and > 0 if ``positive``);
    ``CocoFormatError`` naming the first bad record (``name``: how records are named).
    """
    arr = fast_column(records, key, kinds, width, default, positive=positive)
    if arr is None:
        raise bad_value_error(path, section, key, first_bad(records, key, check, default), name)
    return arr


def value_column(path: str, section: str, ids: np.ndarray, values: list, key: str,
                 check: Callable[[Any], str | None], kinds: str) -> np.ndarray:
    """Like ``column`` for values already pulled out of the records (extra keys, None where
    absent); errors name the record by its id (``ids`` [n], same order as ``values``)."""
    arr = as_array(values, kinds)
    if arr is None:
        for i, v in enumerate(values):
            problem = "is missing" if v is None else check(v)
            if problem:
                raise CocoFormatError(f"{path}: {SINGULAR[section]} id {ids[i]}: {key} {problem}")
        raise AssertionError(f"{check.__name__} accepts every {key!r} but as_array did not")
    return arr


def strings(path: str, section: str, records: list, key: str) -> list[str]:
    """One non-empty string key of every record (no NUL: a name, a file name)."""
    try:
        values = [r[key] for r in records]
        ok = all(type(v) is str and v.strip() and "\0" not in v for v in values)
    except (KeyError, TypeError, AttributeError):
        ok = False
    if not ok:
        raise bad_value_error(path, section, key, first_bad(records, key, check_name))
    return values


def duplicate_ids(ids: np.ndarray) -> list[tuple[int, list[int]]]:
    """Each repeated id with its positions in ``ids`` [n], in id order."""
    uniq, counts = np.unique(ids, return_counts=True)
    return [(int(d), np.flatnonzero(ids == d).tolist()) for d in uniq[counts > 1]]


def check_unique(path: str, section: str, ids: np.ndarray) -> None:
    """Raise ``DuplicateIdError`` listing repeated ids and their positions (up to 5)."""
    dups = duplicate_ids(ids)
    if not dups:
        return
    parts = [f"{d} ({', '.join(f'{section}[{i}]' for i in rows[:3])})" for d, rows in dups[:5]]
    more = f" and {len(dups) - 5} more" if len(dups) > 5 else ""
    raise DuplicateIdError(f"{path}: duplicate {SINGULAR[section]} id(s): {'; '.join(parts)}"
                           f"{more} -- ids must be unique (pycocotools would silently keep only "
                           "the last)")


def check_category_names(path: str, ids: np.ndarray, names: list[str]) -> None:
    """Raise ``CocoFormatError`` naming the ids of the first name given to several categories
    (categories are matched by name: two of one name are ambiguous)."""
    seen: dict[str, list[int]] = {}
    for i, name in zip(ids.tolist(), names):
        seen.setdefault(name, []).append(i)
    for name, same in seen.items():
        if len(same) > 1:
            raise CocoFormatError(f"{path}: category names must be unique: {name!r} is the name "
                                  f"of category ids {', '.join(map(str, same))}")


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


def unique_ids(path: str, section: str, recs: list, name: Namer = record_name) -> np.ndarray:
    """[n] int64 ``id`` of every record, checked to be unique (``DuplicateIdError``)."""
    ids = column(path, section, recs, "id", check_int, "i", name=name)
    check_unique(path, section, ids)
    return ids


def read_images(path: str, recs: list, extra_keys: tuple[str, ...] = (),
                other_fields: bool = False) -> CocoImages:
    ids = unique_ids(path, "images", recs)
    width, height = (column(path, "images", recs, key, check_positive_int, "i", positive=True)
                     for key in ("width", "height"))
    other = None
    if other_fields:
        skip = set(IMAGE_BASE_KEYS) | set(extra_keys)
        other = [{k: v for k, v in r.items() if k not in skip} for r in recs]
    return CocoImages(ids, strings(path, "images", recs, "file_name"), width, height,
                      {k: [r.get(k) for r in recs] for k in extra_keys}, other)


def read_annotations(path: str, recs: list, extra_keys: tuple[str, ...] = ()) -> CocoAnnotations:
    ids = unique_ids(path, "annotations", recs)
    image_ids = column(path, "annotations", recs, "image_id", check_int, "i")
    category_ids = column(path, "annotations", recs, "category_id", check_int, "i")
    bbox = column(path, "annotations", recs, "bbox", check_bbox, "if", width=4)
    crowd = column(path, "annotations", recs, "iscrowd", check_crowd, "ib", default=0)
    if len(crowd) and (crowd.min() < 0 or crowd.max() > 1):
        raise bad_value_error(path, "annotations", "iscrowd",
                              first_bad(recs, "iscrowd", check_crowd, 0))
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
    ids = unique_ids(path, "categories", recs)
    names = strings(path, "categories", recs, "name")
    check_category_names(path, ids, names)
    return dict(zip(ids.tolist(), names))


def read_coco(path: str | Path, image_keys: tuple[str, ...] = (),
              annotation_keys: tuple[str, ...] = (), other_image_fields: bool = False
              ) -> CocoFile:
    """Read and validate one COCO file (``image_keys`` / ``annotation_keys``: extra keys to keep;
    ``other_image_fields``: also every other image field, in ``images.other``).

    Checks: JSON syntax and limits, the three top-level lists, integer ids unique per
    section, non-empty ``file_name``, positive integer ``width``/``height``, ``bbox`` of 4
    finite numbers, ``iscrowd`` 0/1 (default 0), unique category names, and that every
    annotation's ``category_id`` is declared. Annotations pointing at a missing image id
    are NOT an error here (the merger drops and counts them).
    """
    path = str(path)
    data = load_json(path, "annotation file", CocoFormatError)
    image_recs, ann_recs, cat_recs = coco_sections(path, data)
    images = read_images(path, image_recs, image_keys, other_image_fields)
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
