"""The merge report: what was read, kept, dropped or changed, per file and per taxonomy.

Invariant (checked by ``MergeReport.check``): for images and annotations alike,
``read == kept + sum(dropped.values())``. ``changed`` counts records that were kept
but altered (clipped, crowd box turned into an ignore region) or flagged. Per file, also
the kept boxes per super class and, per category name of the file, the annotations read
and kept as boxes (class imbalance at a glance).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

MAX_EXAMPLES = 5

# annotation outcomes
DROP_MISSING_IMAGE = "image id not in the file's images"
DROP_UNMAPPED = "category not in taxonomy (--allow-unmapped)"
DROP_NULL = "label maps_to null"
DROP_NONPOSITIVE = "non-positive width/height"
DROP_OUTSIDE = "box wholly outside the image"
CHANGED_CLIPPED = "box clipped to the image"
CHANGED_CROWD = "crowd box -> ignore region"
# image flags
CHANGED_DUPLICATE = "same content as another image (kept, see duplicates)"
CHANGED_OWN_FIELD = "image field named like one of the merge's own (not copied)"

Example = list  # [file, image id, annotation id or None]


@dataclass
class Counts:
    """Records read, kept, dropped (by reason) and changed (by reason), with example ids."""

    read: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    changed: dict[str, int] = field(default_factory=dict)
    examples: dict[str, list[Example]] = field(default_factory=dict)

    def add(self, other: Counts) -> Counts:
        """Sum of two counts (examples: the first ``MAX_EXAMPLES`` of both)."""
        out = Counts(self.read + other.read, self.kept + other.kept, dict(self.dropped),
                     dict(self.changed), {k: list(v) for k, v in self.examples.items()})
        for mine, theirs in ((out.dropped, other.dropped), (out.changed, other.changed)):
            for reason, n in theirs.items():
                mine[reason] = mine.get(reason, 0) + n
        for reason, ex in other.examples.items():
            out.examples[reason] = (out.examples.get(reason, []) + ex)[:MAX_EXAMPLES]
        return out

    def flag(self, reason: str, n: int, examples: list[Example]) -> None:
        """Count ``n`` kept records as changed for ``reason``."""
        if n:
            self.changed[reason] = self.changed.get(reason, 0) + n
            self.examples[reason] = (self.examples.get(reason, []) + examples)[:MAX_EXAMPLES]

    def check(self, what: str) -> None:
        """Raise ``AssertionError`` unless read == kept + dropped (works under ``python -O``)."""
        if self.read != self.kept + sum(self.dropped.values()):
            raise AssertionError(f"{what}: counts do not add up: read {self.read} != kept "
                                 f"{self.kept} + dropped {sum(self.dropped.values())}")

    def to_dict(self) -> dict:
        return {"read": self.read, "kept": self.kept, "dropped": dict(self.dropped),
                "changed": dict(self.changed), "examples": dict(self.examples)}


def tally(codes: np.ndarray, drop_reasons: dict[int, str], changed: dict[str, np.ndarray],
          example: Callable[[int], Example]) -> Counts:
    """Counts from per-record outcome ``codes`` [M] int.

    Codes in ``drop_reasons`` are drops; every other code is kept. ``changed`` maps a
    reason to a [M] bool mask of kept records it altered. ``example(i)`` names record i.
    """
    out = Counts(read=len(codes))
    dropped = np.isin(codes, list(drop_reasons))
    out.kept = int((~dropped).sum())
    for code, reason in drop_reasons.items():
        rows = np.flatnonzero(codes == code)
        if len(rows):
            out.dropped[reason] = len(rows)
            out.examples[reason] = [example(int(i)) for i in rows[:MAX_EXAMPLES]]
    for reason, mask in changed.items():
        rows = np.flatnonzero(mask & ~dropped)
        out.flag(reason, len(rows), [example(int(i)) for i in rows[:MAX_EXAMPLES]])
    return out


@dataclass
class FileReport:
    """What happened to one annotation file of one taxonomy.

    ``boxes_per_class``: kept boxes per super class the taxonomy labels (column order, zeros
    included); ``labels``: per category name of the file, ``{"read": n, "boxes": kept}``.
    """

    taxonomy: str
    file: str
    images: Counts
    annotations: Counts
    boxes_per_class: dict[str, int] = field(default_factory=dict)
    labels: dict[str, dict[str, int]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {"taxonomy": self.taxonomy, "file": self.file, "images": self.images.to_dict(),
                "annotations": self.annotations.to_dict(),
                "boxes_per_class": dict(self.boxes_per_class),
                "labels": {k: dict(v) for k, v in self.labels.items()}}


@dataclass
class DuplicateGroup:
    """Images with identical bytes; members are [taxonomy, file, source image id, image id]."""

    content_hash: str
    members: list[list]

    def describe(self) -> str:
        return f"{self.content_hash[:12]}: " + "; ".join(
            f"{t} {os.path.basename(f)} image {src} (super id {i})"
            for t, f, src, i in self.members)


@dataclass
class MergeReport:
    """Per-file reports, duplicate-content groups, and the duplicates policy applied."""

    files: list[FileReport] = field(default_factory=list)
    duplicates: list[DuplicateGroup] = field(default_factory=list)
    duplicates_policy: str = "report"
    classes: list[str] = field(default_factory=list)  # super classes in column order

    def class_boxes(self) -> dict[str, dict[str, int]]:
        """Taxonomy name -> kept boxes per super class it labels, summed over its files."""
        out: dict[str, dict[str, int]] = {}
        for fr in self.files:
            mine = out.setdefault(fr.taxonomy, {})
            for name, n in fr.boxes_per_class.items():
                mine[name] = mine.get(name, 0) + n
        return out

    def taxonomies(self) -> dict[str, tuple[Counts, Counts]]:
        """Taxonomy name -> (image counts, annotation counts), summed over its files."""
        out: dict[str, tuple[Counts, Counts]] = {}
        for fr in self.files:
            img, ann = out.get(fr.taxonomy, (Counts(), Counts()))
            out[fr.taxonomy] = (img.add(fr.images), ann.add(fr.annotations))
        return out

    def total(self) -> tuple[Counts, Counts]:
        img, ann = Counts(), Counts()
        for fr in self.files:
            img, ann = img.add(fr.images), ann.add(fr.annotations)
        return img, ann

    def check(self) -> None:
        """Assert that every count adds up (per file, per taxonomy, in total)."""
        for fr in self.files:
            fr.images.check(f"{fr.file} images")
            fr.annotations.check(f"{fr.file} annotations")
        for name, (img, ann) in self.taxonomies().items():
            img.check(f"{name} images")
            ann.check(f"{name} annotations")

    def to_dict(self) -> dict:
        img, ann = self.total()
        boxes = self.class_boxes()
        return {"files": [f.to_dict() for f in self.files],
                "taxonomies": {n: {"images": i.to_dict(), "annotations": a.to_dict(),
                                   "boxes_per_class": boxes[n]}
                               for n, (i, a) in self.taxonomies().items()},
                "total": {"images": img.to_dict(), "annotations": ann.to_dict(),
                          "boxes_per_class": _class_totals(boxes)},
                "duplicates": {"policy": self.duplicates_policy,
                               "groups": [{"content_hash": g.content_hash, "members": g.members}
                                          for g in self.duplicates]}}

    def table(self) -> str:
        """Printable report: one row per taxonomy, then every drop / change reason, duplicates
        and the boxes per class and taxonomy."""
        return "\n".join(_summary_rows(self) + _reason_rows(self) + _duplicate_rows(self)
                         + class_box_rows(self.class_boxes(), self.classes))


def _summary_rows(report: MergeReport) -> list[str]:
    """annotations = boxes + ignore + dropped; clipped counts kept boxes or regions."""
    head = ("taxonomy", "files", "images", "kept", "annotations", "boxes", "ignore", "dropped",
            "clipped")
    rows = [head]
    taxes = report.taxonomies()
    n_files = {t: sum(f.taxonomy == t for f in report.files) for t in taxes}
    totals = [(n, n_files[n], i, a) for n, (i, a) in taxes.items()]
    totals.append(("total", len(report.files), *report.total()))
    for name, nf, img, ann in totals:
        ignore = ann.changed.get(CHANGED_CROWD, 0)
        rows.append((name, nf, img.read, img.kept, ann.read, ann.kept - ignore, ignore,
                     sum(ann.dropped.values()), ann.changed.get(CHANGED_CLIPPED, 0)))
    width = max(len(str(r[0])) for r in rows)
    fmt = f"{{:<{width}}} {{:>5}} {{:>7}} {{:>7}} {{:>11}} {{:>8}} {{:>6}} {{:>7}} {{:>7}}"
    return [f"Merge report: {len(taxes)} taxonomies, {len(report.files)} annotation files"] + \
        [fmt.format(*r) for r in rows]


def _example_text(examples: list[Example]) -> str:
    return ", ".join(f"{os.path.basename(f)}:img {i}" + ("" if a is None else f"/ann {a}")
                     for f, i, a in examples)


def _reason_rows(report: MergeReport) -> list[str]:
    rows = []
    for name, (img, ann) in report.taxonomies().items():
        for kind, counts in (("images", img), ("annotations", ann)):
            for verb, by_reason in (("dropped", counts.dropped), ("changed", counts.changed)):
                for reason, n in by_reason.items():
                    rows.append(f"  {name}: {n} {kind} {verb}: {reason} "
                                f"(e.g. {_example_text(counts.examples.get(reason, []))})")
    head = "Dropped / changed (e.g. file:img image id/ann annotation id):"
    return [head] + rows if rows else []


def _duplicate_rows(report: MergeReport) -> list[str]:
    if not report.duplicates:
        return ["Duplicate images (same content hash): none"]
    shown = [f"  {g.describe()}" for g in report.duplicates[:MAX_EXAMPLES]]
    more = len(report.duplicates) - len(shown)
    return ([f"Duplicate images (same content hash): {len(report.duplicates)} group(s), "
             f"policy {report.duplicates_policy!r} (all kept as separate samples)"] + shown
            + ([f"  ... and {more} more"] if more > 0 else []))


def _class_totals(boxes: dict[str, dict[str, int]]) -> dict[str, int]:
    out: dict[str, int] = {}
    for per_class in boxes.values():
        for name, n in per_class.items():
            out[name] = out.get(name, 0) + n
    return out


def class_box_rows(boxes: dict[str, dict[str, int]], classes: list[str] = (),
                   title: str = "Boxes per class (kept boxes)") -> list[str]:
    """Rows: one per super class (``classes`` order, else first seen), one column per taxonomy
    and the total; ``.`` where the taxonomy does not label the class; a labeled class with no
    box at all is marked ``no boxes``."""
    if not boxes:
        return []
    order = list(classes) or list(dict.fromkeys(c for per in boxes.values() for c in per))
    totals, taxes = _class_totals(boxes), list(boxes)
    rows = [["class", *taxes, "total", ""]]
    for name in order:
        cells = [str(boxes[t][name]) if name in boxes[t] else "." for t in taxes]
        labeled = name in totals
        rows.append([name, *cells, str(totals[name]) if labeled else ".",
                     "no boxes" if labeled and totals[name] == 0 else ""])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join([r[0].ljust(widths[0]), *(c.rjust(w) for c, w in zip(r[1:-1], widths[1:])),
                        r[-1]]).rstrip() for r in rows]
    return [f"{title}; . = the taxonomy does not label the class:"] + ["  " + x for x in lines]
