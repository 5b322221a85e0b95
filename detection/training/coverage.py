"""Supervision coverage: how many cells trained each class, per taxonomy, and what is missing.

The training bench sums, per taxonomy and class, the anchors that trained the column as a
positive, as a positive only through a descendant's box (``ancestor_positive``), as a
negative, and the pseudo-labeled cells (``taxdet.losses.cell_plan.COVERAGE_KINDS``). Negatives
are also split into ``background_negative`` (cells at background anchors) and ``box_negative``
(off-path cells at other classes' boxes): a column with box negatives only never learned what
background looks like. At the end of
training the counts are printed, saved as ``coverage.json`` beside ``metrics.jsonl``, and
any class that got no positives or no negatives at all is warned about.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from taxdet.core.files import write_atomic

KINDS = ("positive", "ancestor_positive", "negative", "pseudo", "background_negative",
         "box_negative")   # = COVERAGE_KINDS; negative = background_negative + box_negative


def coverage_dict(counts: np.ndarray, taxonomies: list[str], classes: list[str]) -> dict:
    """``counts [T, 6, K]`` as ``{"taxonomies": {t: {class: {kind: n}}}, "total": ...}``."""
    per_tax = {t: {c: {k: int(counts[i, j, ci]) for j, k in enumerate(KINDS)}
                   for ci, c in enumerate(classes)}
               for i, t in enumerate(taxonomies)}
    total = counts.sum(0)
    return {"kinds": list(KINDS), "taxonomies": per_tax,
            "total": {c: {k: int(total[j, ci]) for j, k in enumerate(KINDS)}
                      for ci, c in enumerate(classes)}}


def coverage_warnings(report: dict) -> list[str]:
    """One line per class that got no positive or no negative cell from any taxonomy."""
    out = []
    for cls, n in report["total"].items():
        missing = [kind for kind in ("positive", "negative") if n[kind] == 0]
        if missing:
            out.append(f"class {cls!r} got no {' and no '.join(missing)} training cells: "
                       "its column is not trained (docs/losses.md#supervision-coverage)")
    return out


def coverage_table(report: dict) -> str:
    """A fixed-width table: one row per class, positives / ancestor-only / negatives (at
    background anchors, at other classes' boxes) / pseudo summed over taxonomies, then which
    taxonomies gave positives."""
    rows = [f"{'class':<20} {'positive':>10} {'anc.-only':>10} {'bg negative':>12} "
            f"{'box negative':>12} {'pseudo':>10}  positives from"]
    for cls, n in report["total"].items():
        givers = [t for t, per in report["taxonomies"].items() if per[cls]["positive"]]
        rows.append(f"{cls:<20} {n['positive']:>10} {n['ancestor_positive']:>10} "
                    f"{n['background_negative']:>12} {n['box_negative']:>12} {n['pseudo']:>10}"
                    f"  {', '.join(givers) or '-'}")
    return "\n".join(rows)


def write_coverage(counts: np.ndarray, taxonomies: list[str], classes: list[str],
                   out_dir: Path) -> tuple[dict, list[str]]:
    """Write ``coverage.json`` (atomically) and return the report and its warnings."""
    report = coverage_dict(counts, taxonomies, classes)
    warnings = coverage_warnings(report)
    report["warnings"] = warnings
    write_atomic(out_dir / "coverage.json", json.dumps(report, indent=1))
    return report, warnings
