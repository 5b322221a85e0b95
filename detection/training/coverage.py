"""Supervision coverage: how many cells trained each class, per taxonomy, and what is missing.

The training bench sums, per taxonomy and class, the anchors that trained the column as a
positive, as a positive only through a descendant's box (``ancestor_positive``), as a
negative, and the pseudo-labeled cells (``taxdet.losses.cell_plan.COVERAGE_KINDS``). Negatives
are also split into ``background_negative`` (cells at background anchors) and ``box_negative``
(off-path cells at other classes' boxes): a column with box negatives only never learned what
background looks like. At the end of
training the counts are printed, saved as ``coverage.json`` beside ``metrics.jsonl``, and
any class that got no positives or no negatives at all is warned about.

The counts also give the **decoding plan** (``decoding_plan``) that coverage decoding applies
(``taxdet.detection.prediction.hierarchy_decoding``): a column whose background negatives fall
below ``FLOOR_FRACTION`` (1 %) of the median column's is descendant-decoded (scored as the max
over its trusted descendants, its own column ignored); one without any background negative and
without a descendant is excluded from predictions (``taxdet.supertax.decoding_rule``). The
checkpoints record the plan as of their step (``checkpoint["decoding_plan"]``), ``coverage.json``
the final one, and the end of training warns about every excluded column.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from taxdet.core.files import write_atomic
from taxdet.supertax.decoding_rule import strict_descendants, untrusted_columns

KINDS = ("positive", "ancestor_positive", "negative", "pseudo", "background_negative",
         "box_negative")   # = COVERAGE_KINDS; negative = background_negative + box_negative
BACKGROUND = KINDS.index("background_negative")
FLOOR_FRACTION = 0.01   # the floor of background negatives: this much of the median column's


def decoding_plan(counts: np.ndarray, ancestors: np.ndarray, classes: list[str],
                  fraction: float = FLOOR_FRACTION) -> dict | None:
    """The decoding plan of coverage counts ``[T, 6, K]`` (module docstring):
    ``{"descendant_decoded": [class, ...], "excluded": [...], "floor_fraction", "floor",
    "median_background_negatives"}``; None before any background cell was counted."""
    background = np.asarray(counts, dtype=np.float64)[:, BACKGROUND].sum(0)   # [K]
    if not background.any():
        return None
    median = float(np.median(background))
    floor = fraction * median
    decoded, excluded = untrusted_columns(ancestors, background < floor, background == 0)
    return {"descendant_decoded": [classes[j] for j in np.flatnonzero(decoded)],
            "excluded": [classes[j] for j in np.flatnonzero(excluded)],
            "floor_fraction": fraction, "floor": floor, "median_background_negatives": median}


def plan_lines(plan: dict | None, ancestors: np.ndarray, classes: list[str]
               ) -> tuple[list[str], list[str]]:
    """``(warnings, notes)`` of a decoding plan: one warning per excluded column, one note per
    descendant-decoded column (naming the descendants it is scored from)."""
    if not plan:
        return [], []
    index = {c: j for j, c in enumerate(classes)}
    untrusted = [index[c] for c in plan["descendant_decoded"] + plan["excluded"]]
    sources = strict_descendants(ancestors)
    sources[untrusted, :] = False
    floor = f"{plan['floor']:.0f} = {plan['floor_fraction']:.0%} of the median column's"
    warnings = [f"class {c!r} got no background negative and has no trusted descendant: its "
                "column never learned where it is absent, so it is excluded from predictions "
                "(decoding plan in the checkpoints; --decoding own or hierarchy predicts it)"
                for c in plan["excluded"]]
    notes = [f"class {c!r} got fewer background negatives than the floor ({floor}): it is "
             f"scored as the max over its descendants "
             f"({', '.join(classes[d] for d in np.flatnonzero(sources[:, index[c]]))}), "
             "its own column ignored (--decoding coverage, the default)"
             for c in plan["descendant_decoded"]]
    return warnings, notes


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
                   out_dir: Path, ancestors: np.ndarray | None = None
                   ) -> tuple[dict, list[str]]:
    """Write ``coverage.json`` (atomically) and return the report and its warnings. With
    ``ancestors`` [K, K] the report also holds the final ``decoding_plan`` and its
    ``decoding_notes``, and the warnings name the excluded columns."""
    report = coverage_dict(counts, taxonomies, classes)
    warnings = coverage_warnings(report)
    if ancestors is not None:
        report["decoding_plan"] = decoding_plan(counts, ancestors, classes)
        excluded, report["decoding_notes"] = plan_lines(report["decoding_plan"], ancestors,
                                                        classes)
        warnings += excluded
    report["warnings"] = warnings
    write_atomic(out_dir / "coverage.json", json.dumps(report, indent=1))
    return report, warnings
