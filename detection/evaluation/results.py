"""Evaluation results: dataclasses and their JSON / Markdown / text-table forms."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from taxdet.detection.evaluation.backends import STAT_KEYS, CocoArrays

NO_GT = "no ground truth"
NOT_PREDICTED = "not predicted"


@dataclass
class ClassResult:
    """One category's numbers (COCO: area all, maxDets 100); None where undefined."""

    name: str
    category_id: int
    ap: float | None        # mean of precision over IoU 0.50:0.95 and 101 recall points
    ap50: float | None
    ap75: float | None
    ar100: float | None     # mean of recall over IoU 0.50:0.95
    gt_boxes: int           # non-crowd ground-truth boxes scored
    images: int             # images that label the class (all images unless federated)
    predictions: int        # detections scored for the class
    note: str | None = None  # NO_GT or NOT_PREDICTED

    def to_dict(self) -> dict:
        return {"category_id": self.category_id, "AP": self.ap, "AP50": self.ap50,
                "AP75": self.ap75, "AR100": self.ar100, "gt_boxes": self.gt_boxes,
                "images": self.images, "predictions": self.predictions, "note": self.note}


@dataclass
class TaxonomyResult:
    """The same metrics restricted to one taxonomy's images and the classes it labels."""

    name: str
    images: int
    stats: dict[str, float]
    per_class: list[ClassResult]

    def to_dict(self) -> dict:
        return {"images": self.images, "classes": [c.name for c in self.per_class], **self.stats,
                "per_class": {c.name: c.to_dict() for c in self.per_class}}


@dataclass
class EvalResult:
    """Everything one evaluation produced. ``stats`` holds COCO's 12 numbers (-1: undefined,
    as pycocotools reports it, e.g. APs without small objects)."""

    mode: str                  # "plain" | "federated" | "customer"
    engine: str
    stats: dict[str, float]
    per_class: list[ClassResult]
    per_taxonomy: list[TaxonomyResult] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    customer: str | None = None
    arrays: CocoArrays | None = field(default=None, repr=False)

    def to_dict(self) -> dict:
        return {**self.stats, "mode": self.mode, "engine": self.engine, "customer": self.customer,
                "per_class": {c.name: c.to_dict() for c in self.per_class},
                "per_taxonomy": {t.name: t.to_dict() for t in self.per_taxonomy},
                "counts": dict(self.counts), "warnings": list(self.warnings)}

    def tables(self) -> list[tuple[str, list[list[str]]]]:
        """(title, rows with a header row first) for every table of the report."""
        head = f"COCO bbox, {self.mode}" + (f" ({self.customer})" if self.customer else "")
        out = [(f"{head}, engine {self.engine}",
                [["classes", *STAT_KEYS], ["all", *(number(self.stats[k]) for k in STAT_KEYS)]]),
               ("Per class (IoU 0.50:0.95, area all, maxDets 100)", _class_rows(self.per_class))]
        if self.per_taxonomy:
            rows = [["taxonomy", "images", "classes", "AP", "AP50", "AR100"]]
            rows += [[t.name, str(t.images), str(len(t.per_class)), number(t.stats["AP"]),
                      number(t.stats["AP50"]), number(t.stats["AR100"])] for t in self.per_taxonomy]
            out.append(("Per taxonomy (its images, the classes it labels)", rows))
        return out

    def format_table(self) -> str:
        """Readable text tables."""
        return "\n\n".join(f"{title}\n{text_table(rows)}" for title, rows in self.tables()) \
            + _warnings_text(self.warnings)

    def to_markdown(self) -> str:
        parts = [f"**{markdown_text(title)}**\n\n{markdown_table(rows)}"
                 for title, rows in self.tables()]
        if self.warnings:
            parts.append("**Warnings**\n\n" + "\n".join(f"- {markdown_text(w)}"
                                                          for w in self.warnings))
        return "\n\n".join(parts) + "\n"


def number(x: float | None) -> str:
    return "-" if x is None or x < 0 else f"{x:.3f}"


def _class_rows(per_class: list[ClassResult]) -> list[list[str]]:
    rows = [["class", "AP", "AP50", "AR100", "gt", "images", "preds", "note"]]
    rows += [[c.name, number(c.ap), number(c.ap50), number(c.ar100), str(c.gt_boxes), str(c.images),
              str(c.predictions), c.note or ""] for c in per_class]
    return rows


def text_table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    left = [i == 0 or head == "note" for i, head in enumerate(rows[0])]
    lines = ["  ".join(cell.ljust(w) if lft else cell.rjust(w)
                       for cell, w, lft in zip(r, widths, left)).rstrip() for r in rows]
    return "\n".join("  " + line for line in lines)


_CONTROL = {i: f"\\x{i:02x}" for i in [*range(32), 127]} | {9: "\\t", 10: "\\n", 13: "\\r"}


def markdown_text(text: str) -> str:
    """``text`` on one Markdown line, shown as it is: a backslash and ``|`` escaped (a ``|``
    would end a table cell), a newline and other control characters as ``\\n``, ``\\x07``
    (a newline would end the table, and could start a heading)."""
    return text.replace("\\", "\\\\").replace("|", "\\|").translate(_CONTROL)


def markdown_table(rows: list[list[str]]) -> str:
    """A Markdown table of ``rows`` (a header row first), every cell escaped (``markdown_text``)."""
    lines = ["| " + " | ".join(markdown_text(c) for c in r) + " |" for r in rows]
    lines.insert(1, "|" + "|".join(["---"] + ["---:"] * (len(rows[0]) - 1)) + "|")
    return "\n".join(lines)


def _warnings_text(warnings: list[str]) -> str:
    return ("\n\nWarnings\n" + "\n".join(f"  - {w}" for w in warnings)) if warnings else ""


def class_results(arrays: CocoArrays, names: dict[int, str],
                  counts: dict[int, tuple[int, int, int]],
                  not_predicted: set[int] = frozenset()) -> list[ClassResult]:
    """One ``ClassResult`` per category of ``arrays`` (then the ``not_predicted`` ones).

    ``counts``: category id -> (gt boxes, images labeling it, predictions).
    """
    out = []
    for k, cat in enumerate(arrays.category_ids):
        p = arrays.precision[:, :, k, 0, 2]  # [T, R]
        r = arrays.recall[:, k, 0, 2]        # [T]
        ap, ap50, ap75, ar = (_mean(p), _mean(p[0]), _mean(p[5]), _mean(r))
        out.append(ClassResult(names[cat], cat, ap, ap50, ap75, ar, *counts[cat],
                               note=None if ap is not None else NO_GT))
    for cat in sorted(not_predicted):
        out.append(ClassResult(names[cat], cat, None, None, None, None, *counts[cat],
                               note=NOT_PREDICTED))
    return out


def _mean(x: np.ndarray) -> float | None:
    valid = x[x > -1]
    return float(np.mean(valid)) if len(valid) else None
