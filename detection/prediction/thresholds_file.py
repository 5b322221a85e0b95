"""Per-class score thresholds: the YAML file ``evaluate.py --fit-thresholds`` writes and
``predict.py --thresholds`` applies.

Format (class names are those of the output taxonomy: a customer's labels, or the
super-taxonomy's classes)::

    taxonomy: customer_b        # the taxonomy the names belong to (optional; null: unchecked)
    criterion: f1               # how they were chosen: f1, or "precision >= 0.9"
    iou: 0.5                    # IoU a detection needs to match a ground-truth box
    thresholds:                 # class name -> lowest score kept
      Car: 0.412
      Truck: null               # null: never pre-labeled (written by hand only: the fit
                                #   gives every class with ground truth a number)
    fit:                        # for reading only: the validation numbers at that threshold
      Car: {precision: 0.91, recall: 0.62, f1: 0.74, gt_boxes: 120, detections: 81}

Classes absent from ``thresholds`` use the default (``predict.py --score-threshold``).
``predict.py`` warns about every class the thresholds leave without pre-labels
(``classes_left_out``): a null threshold, or one above every score the model gave it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from taxdet.core.errors import ConfigError, InputNotFoundError
from taxdet.supertax.yamlpos import Map, Seq, YamlSyntaxError, load_yaml

HEADER = ("# Per-class score thresholds (predict.py --thresholds); written by evaluate.py "
          "--fit-thresholds.\n# thresholds: class -> lowest score kept (null: never "
          "predicted); classes not listed use --score-threshold.\n")


@dataclass
class Thresholds:
    """Class name -> lowest score kept (None: the class is never kept)."""

    thresholds: dict[str, float | None]
    taxonomy: str | None = None
    criterion: str = "f1"
    iou: float = 0.5
    fit: dict[str, dict] = field(default_factory=dict)

    def to_yaml(self) -> str:
        doc = {"taxonomy": self.taxonomy, "criterion": self.criterion, "iou": self.iou,
               "thresholds": self.thresholds, "fit": self.fit}
        return HEADER + yaml.safe_dump(doc, sort_keys=False)

    def check_names(self, names: list[str], taxonomy: str, source: str) -> None:
        """``ConfigError`` when the file is for another taxonomy or names unknown classes."""
        if self.taxonomy is not None and self.taxonomy != taxonomy:
            raise ConfigError(f"{source}: thresholds are for taxonomy {self.taxonomy!r}, the "
                              f"detections are in {taxonomy!r}")
        unknown = [n for n in self.thresholds if n not in names]
        if unknown:
            raise ConfigError(f"{source}: thresholds for {unknown}, which are not classes of "
                              f"{taxonomy!r} ({', '.join(names)})")


def _threshold(value, name: str, source: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{source}: thresholds: {name}: expected a score in [0, 1] or null, "
                          f"got {value!r}")
    if not 0 <= value <= 1:
        raise ConfigError(f"{source}: thresholds: {name}: {value} is not in [0, 1]")
    return float(value)


def _load_bounded(path: Path) -> Any:
    """The YAML document as plain dicts and lists, read within the limits of the taxonomy
    reader (size, values with aliases expanded, nesting: ``taxdet.supertax.yamlpos``);
    a key given twice in one mapping is refused (``ConfigError`` naming its position)."""
    try:
        doc, _ = load_yaml(path)
    except YamlSyntaxError as exc:
        raise ConfigError(f"{exc.pos}: not a readable YAML file: {exc.message}") from None
    return _plain(doc)


def _plain(value: Any) -> Any:
    """``Map`` / ``Seq`` -> dict / list, all the way down (refusing duplicate keys)."""
    if isinstance(value, Map):
        if value.duplicate_keys:
            key, pos = value.duplicate_keys[0]
            raise ConfigError(f"{pos}: the key {key!r} appears twice in one mapping")
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Seq):
        return [_plain(v) for v in value]
    return value


def read_thresholds(path: str | Path) -> Thresholds:
    """Read and check a thresholds YAML file (``ConfigError`` naming the file and the key)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: thresholds file not found")
    doc = _load_bounded(path)
    if not isinstance(doc, dict) or not isinstance(doc.get("thresholds"), dict):
        raise ConfigError(f"{path}: expected a mapping with a 'thresholds' mapping of class "
                          "name -> score")
    taxonomy = doc.get("taxonomy")
    if taxonomy is not None and not isinstance(taxonomy, str):
        raise ConfigError(f"{path}: taxonomy: expected a name, got {taxonomy!r}")
    values = {str(k): _threshold(v, str(k), str(path)) for k, v in doc["thresholds"].items()}
    return Thresholds(values, taxonomy, str(doc.get("criterion", "f1")),
                      float(doc.get("iou", 0.5)), doc.get("fit") or {})


def apply_thresholds(results: list[dict], names: dict[int, str], thresholds: Thresholds | None,
                     default: float) -> list[dict]:
    """The results scoring at least their class's threshold (``names``: category id -> class
    name; classes without one use ``default``; a None threshold keeps none)."""
    cut = class_cuts(names, thresholds, default)
    kept = []
    for r in results:
        t = cut.get(r["category_id"], default)
        if t is not None and r["score"] >= t:
            kept.append(r)
    return kept


def class_cuts(names: dict[int, str], thresholds: Thresholds | None,
               default: float) -> dict[int, float | None]:
    """Category id -> its lowest kept score (None: none kept)."""
    given = thresholds.thresholds if thresholds is not None else {}
    return {cat: given[name] if name in given else default for cat, name in names.items()}


def classes_left_out(results: list[dict], names: dict[int, str], thresholds: Thresholds | None,
                     default: float) -> dict[str, str]:
    """Class name -> why ``apply_thresholds`` keeps none of its detections in ``results``
    (before thresholding): its threshold is null, or above every score it has."""
    best: dict[int, float] = {}
    for r in results:
        best[r["category_id"]] = max(best.get(r["category_id"], 0.0), r["score"])
    out = {}
    for cat, cut in class_cuts(names, thresholds, default).items():
        if cut is None:
            out[names[cat]] = "its threshold is null (never pre-labeled)"
        elif cat in best and best[cat] < cut:
            out[names[cat]] = f"threshold {cut:g} is above its best score {best[cat]:.3f}"
    return out
