"""Drift cohorts: the same model scored separately on groups of images sharing an image field.

Hold the model, examine cohorts: ``evaluate.py --cohort-by KEY`` groups the ground truth's
images by the image field ``KEY`` and runs the ordinary evaluation (``evaluate``) on each
group, with the view (plain / federated / customer) of the whole-file evaluation.

* ``date_captured`` groups by month (``YYYY-MM``); any field does with ``KEY:month``. A date
  is a string starting ``YYYY-MM`` (``-``, ``/``, ``:`` or ``.`` between; COCO's
  ``2013-11-14 11:18:45``, ISO 8601, EXIF) or ``YYYYMMDD``, or a Unix time in seconds (UTC);
  anything else is the cohort ``(unparsed)``.
* ``taxonomy``, ``source_file`` (``super.json``) or any other field: one cohort per value
  (lists and objects as compact JSON).
* An image without the field (or with null) is in the cohort ``(none)``.

Cohorts are sorted by name (months chronologically; numbers numerically), ``(none)`` and
``(unparsed)`` last.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime, timezone

from taxdet.detection.evaluation.evaluator import evaluate, load_ground_truth
from taxdet.detection.evaluation.results import EvalResult, markdown_table, number, text_table
from taxdet.supertax import TaxonomySet

NONE = "(none)"
UNPARSED = "(unparsed)"
MONTH_SUFFIX = ":month"
MONTH_KEYS = ("date_captured",)   # grouped by month without the suffix
TABLE_METRICS = ("AP", "AP50", "AP75", "AR100")
_DATE = re.compile(r"^\s*(\d{4})(?:[-/:.](\d{1,2})(?!\d)|(\d{2})\d{2}(?!\d))")


def parse_key(key: str) -> tuple[str, bool]:
    """(image field, group by month) for ``--cohort-by KEY``."""
    if key.endswith(MONTH_SUFFIX):
        return key[:-len(MONTH_SUFFIX)], True
    return key, key in MONTH_KEYS


def month_of(value: object) -> str:
    """``YYYY-MM`` of a date string or Unix time; ``(none)`` / ``(unparsed)`` otherwise."""
    if value is None:
        return NONE
    if isinstance(value, str):
        m = _DATE.match(value)
        month = int(m.group(2) or m.group(3)) if m else 0
        return f"{m.group(1)}-{month:02d}" if 1 <= month <= 12 else UNPARSED
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        try:
            return datetime.fromtimestamp(value, timezone.utc).strftime("%Y-%m")
        except (OverflowError, OSError, ValueError):
            return UNPARSED
    return UNPARSED


def cohort_of(image: dict, field: str, by_month: bool) -> str:
    """The cohort name of one COCO image record."""
    value = image.get(field)
    if by_month:
        return month_of(value)
    if value is None:
        return NONE
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _order(name: str) -> tuple:
    if name in (NONE, UNPARSED):
        return (2, name == NONE, 0.0, name)
    try:
        return (0, False, float(name), name)
    except ValueError:
        return (1, False, 0.0, name)


def group_images(images: list[dict], key: str) -> dict[str, list[int]]:
    """Cohort name -> image ids (file order), cohorts sorted (module docstring)."""
    field, by_month = parse_key(key)
    groups: dict[str, list[int]] = {}
    for img in images:
        groups.setdefault(cohort_of(img, field, by_month), []).append(img["id"])
    return {name: groups[name] for name in sorted(groups, key=_order)}


@dataclass
class Cohort:
    """One cohort's evaluation."""

    name: str
    images: int
    result: EvalResult

    def to_dict(self) -> dict:
        return {"images": self.images, **self.result.to_dict()}


@dataclass
class CohortReport:
    """Every cohort of one key, scored in one view."""

    key: str
    mode: str
    cohorts: list[Cohort]

    def metric(self, name: str) -> list[float | None]:
        """One COCO number per cohort (None where undefined)."""
        return [None if c.result.stats[name] < 0 else c.result.stats[name] for c in self.cohorts]

    def rows(self) -> list[list[str]]:
        rows = [["cohort", "images", "gt", "preds", *TABLE_METRICS]]
        for c in self.cohorts:
            counts = c.result.counts
            rows.append([c.name, str(c.images), str(counts.get("gt_boxes", 0)),
                         str(counts.get("predictions_scored", 0)),
                         *(number(c.result.stats[m]) for m in TABLE_METRICS)])
        return rows

    def title(self) -> str:
        field, by_month = parse_key(self.key)
        return f"Cohorts by {field}{' (month)' if by_month else ''}, {self.mode}"

    def format_table(self) -> str:
        return f"{self.title()}\n{text_table(self.rows())}"

    def to_markdown(self) -> str:
        return f"**{self.title()}**\n\n{markdown_table(self.rows())}\n"

    def to_dict(self) -> dict:
        return {"key": self.key, "mode": self.mode,
                "cohorts": {c.name: c.to_dict() for c in self.cohorts}}


def _split_by_cohort(gt: dict, predictions: list[dict], groups: dict[str, list[int]]
                     ) -> dict[str, tuple[dict, list[dict]]]:
    """Cohort -> (its COCO dict, its predictions), in one pass over images, boxes and
    predictions."""
    cohort = {i: name for name, ids in groups.items() for i in ids}
    parts: dict[str, tuple[dict, list[dict]]] = {
        name: ({**gt, "images": [], "annotations": []}, []) for name in groups}
    for key, items in (("images", gt["images"]), ("annotations", gt["annotations"])):
        id_key = "id" if key == "images" else "image_id"
        for item in items:
            parts[cohort[item[id_key]]][0][key].append(item)
    for p in predictions:
        parts[cohort[p["image_id"]]][1].append(p)
    return parts


def evaluate_cohorts(gt: dict, predictions: list[dict], key: str, whole: EvalResult, *,
                     taxset: TaxonomySet | None = None, engine: str = "auto",
                     source: str = "<ground truth>") -> CohortReport:
    """Score ``predictions`` (a checked COCO results list on ``gt``'s images, in the ids
    ``whole`` was scored in) on each cohort of ``gt``'s images by ``key``, in ``whole``'s
    view."""
    federated = whole.mode == "federated"
    groups = group_images(gt["images"], key)
    cohorts = []
    for name, (part, preds) in _split_by_cohort(gt, predictions, groups).items():
        truth = load_ground_truth(part, taxset=taxset, customer=whole.customer,
                                  name=f"{source} [{key} = {name}]")
        result = evaluate(truth, preds, federated=federated, engine=engine)
        cohorts.append(Cohort(name, len(part["images"]), result))
    return CohortReport(key, whole.mode, cohorts)
