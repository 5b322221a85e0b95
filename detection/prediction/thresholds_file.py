"""Per-class score thresholds: the YAML file ``evaluate.py --fit-thresholds`` writes and
``predict.py --thresholds`` applies.

Format (class names are those of the output taxonomy: a customer's labels, or the
super-taxonomy's classes)::

    taxonomy: customer_b        # the taxonomy the names belong to (optional; null: unchecked)
    criterion: f1               # how they were chosen: f1, or "precision >= 0.9"
    iou: 0.5                    # IoU a detection needs to match a ground-truth box
    thresholds:                 # class name -> lowest score kept
      Car: 0.412
      Truck: null               # null: never pre-labeled (the criterion cannot be met)
    fit:                        # for reading only: the validation numbers at that threshold
      Car: {precision: 0.91, recall: 0.62, f1: 0.74, gt_boxes: 120, detections: 81}

Classes absent from ``thresholds`` use the default (``predict.py --score-threshold``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from taxdet.core.errors import ConfigError, InputNotFoundError

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


def read_thresholds(path: str | Path) -> Thresholds:
    """Read and check a thresholds YAML file (``ConfigError`` naming the file and the key)."""
    path = Path(path)
    if not path.is_file():
        raise InputNotFoundError(f"{path}: thresholds file not found")
    try:
        doc = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: not a readable YAML file ({exc})") from None
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
    given = thresholds.thresholds if thresholds is not None else {}
    cut = {cat: given[name] if name in given else default for cat, name in names.items()}
    kept = []
    for r in results:
        t = cut.get(r["category_id"], default)
        if t is not None and r["score"] >= t:
            kept.append(r)
    return kept
