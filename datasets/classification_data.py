"""Image-classification datasets of the taxonomies' ``data:`` entries, merged by the rules of the
detection merge.

A taxonomy declares classification data in the same ``data:`` list as its COCO files::

    data:
      - classification: ../../data/demo_classifier/customer_a      # ImageFolder layout
      - classification_csv: ../../data/more_a.csv                  # file,label rows

* ``classification: DIR``: torchvision's ``ImageFolder`` layout, one sub-folder per label of the
  taxonomy (``DIR/Human/0001.png``); image files anywhere below a label folder count (suffixes
  ``IMAGE_SUFFIXES``), other files are skipped and counted.
* ``classification_csv: FILE``: a header row ``file,label``, then one image per row; ``file`` is
  relative to the CSV's folder (or absolute).

Every image gets exactly one outcome, counted in the ``ClassificationReport``:

* **kept**: its label maps to a super class: a ``ClassificationSample`` with that column and the
  taxonomy's label mask [K] (the columns a masked loss may train);
* **ood**: its label has ``maps_to: null``: kept aside in the OOD set (never trained on; what an
  out-of-distribution detector must reject);
* **dropped** (``unmapped``): a label the taxonomy does not name; an error naming the folder or
  the CSV line unless ``allow_unmapped``.

Every file is read once: hashed (the content hash keys the stable split, ``taxdet.datasets.split``)
and fully decoded (a broken image fails here, naming it, not mid-training). Image ids run 1..N over
the kept and OOD samples in taxonomy, source and file order.
"""

from __future__ import annotations

import csv
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from taxdet.core.errors import InputNotFoundError
from taxdet.core.names import did_you_mean
from taxdet.datasets.coco_io import DatasetError
from taxdet.datasets.images import ImageRef, check_images
from taxdet.supertax import ClassificationSource, Taxonomy, TaxonomySet

# torchvision's ImageFolder suffixes (case-insensitive)
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
CSV_HEADER = ["file", "label"]
OOD = -1            # ``ClassificationSample.column`` of an OOD sample (label ``maps_to: null``)
MAX_LISTED = 20     # problems named in one error
MAX_CSV_BYTES = 256 << 20
DROP_UNMAPPED = "label not in taxonomy (--data.allow_unmapped)"  # the one counted drop


class ClassificationDataError(DatasetError):
    """A classification folder or CSV that cannot be used (the message names file and line)."""


@dataclass
class ClassificationSample:
    """One labeled image in super-taxonomy terms.

    ``column``: the super class its label maps to, or ``OOD``; ``label_mask`` [K] bool: True
    where its taxonomy labels the class. ``image_id``, ``file``, ``content_hash``,
    ``source_file`` and ``source_image_id`` are the fields ``taxdet.datasets.split`` keys on and
    ``split.json`` records (a classification image has no source id: -1).
    """

    image_id: int
    file: str
    taxonomy: str
    label: str
    column: int
    label_mask: np.ndarray
    content_hash: str = ""
    source_file: str = ""
    source_image_id: int = -1


@dataclass
class _Entry:
    """An image named by a source: its path, label and where it is named (folder or CSV line)."""

    path: str
    label: str
    where: str


@dataclass
class SourceReport:
    """What one folder or CSV held: images read = kept + ood + dropped."""

    taxonomy: str
    source: str
    kind: str
    read: int = 0
    kept: int = 0
    ood: int = 0
    dropped: dict[str, int] = field(default_factory=dict)
    labels: dict[str, int] = field(default_factory=dict)  # label name -> images read
    skipped_files: int = 0  # files of a folder that are no images (or not in a label folder)

    def to_dict(self) -> dict:
        return {"taxonomy": self.taxonomy, "source": self.source, "kind": self.kind,
                "read": self.read, "kept": self.kept, "ood": self.ood,
                "dropped": dict(self.dropped), "labels": dict(self.labels),
                "skipped_files": self.skipped_files}


@dataclass
class ClassificationReport:
    """Per source counts, and per taxonomy the kept images of every super class."""

    sources: list[SourceReport]
    per_class: dict[str, dict[str, int]]  # taxonomy -> super class -> kept images

    def check(self) -> None:
        """Every image read has exactly one outcome."""
        for s in self.sources:
            assert s.read == s.kept + s.ood + sum(s.dropped.values()), s

    def to_dict(self) -> dict:
        total = {k: sum(getattr(s, k) for s in self.sources) for k in ("read", "kept", "ood")}
        total["dropped"] = sum(sum(s.dropped.values()) for s in self.sources)
        return {"kind": "classification", **total,
                "sources": [s.to_dict() for s in self.sources], "per_class": self.per_class}

    def table(self) -> str:
        """One line per source: taxonomy, read, kept, OOD, dropped, path."""
        rows = [f"  {'taxonomy':<14}{'read':>7}{'kept':>7}{'ood':>7}{'dropped':>9}  source"]
        rows += [f"  {s.taxonomy:<14}{s.read:>7}{s.kept:>7}{s.ood:>7}"
                 f"{sum(s.dropped.values()):>9}  {s.source}" for s in self.sources]
        return "\n".join(rows)


@dataclass
class ClassificationData:
    """The merged classification datasets: in-distribution ``samples`` and the ``ood`` set."""

    samples: list[ClassificationSample]
    ood: list[ClassificationSample]
    taxset: TaxonomySet
    report: ClassificationReport


def _source_where(tax: Taxonomy, src: ClassificationSource) -> str:
    return f"{src.pos.file}:{src.pos.line}" if src.pos else str(tax.path or tax.name)


def _folder_entries(src: ClassificationSource, report: SourceReport) -> list[_Entry]:
    """Images of an ImageFolder tree, label folders and files in sorted order."""
    root = Path(src.path)
    out = []
    for entry in sorted(root.iterdir(), key=lambda p: p.name):
        if not entry.is_dir():
            report.skipped_files += 1
            continue
        for path in sorted(p for p in entry.rglob("*") if p.is_file()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                out.append(_Entry(str(path), entry.name, f"{root}, label folder {entry.name!r}"))
            else:
                report.skipped_files += 1
    return out


def _csv_rows(path: Path) -> list[list[str]]:
    if path.stat().st_size > MAX_CSV_BYTES:
        raise ClassificationDataError(f"{path}: larger than {MAX_CSV_BYTES} bytes")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return list(csv.reader(f))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise ClassificationDataError(f"{path}: not a readable CSV file ({exc})") from None


def _csv_entries(src: ClassificationSource) -> list[_Entry]:
    """Rows ``file,label`` after the header; every malformed row named by line, all at once."""
    path = Path(src.path)
    rows = _csv_rows(path)
    if not rows or [c.strip().lower() for c in rows[0]] != CSV_HEADER:
        got = ",".join(rows[0]) if rows else "an empty file"
        raise ClassificationDataError(f"{path}:1: expected the header row 'file,label', got "
                                      f"{got!r}")
    out, problems = [], []
    for line, row in enumerate(rows[1:], start=2):
        if not row or not any(c.strip() for c in row):
            continue  # blank line
        if len(row) != 2 or not row[0].strip() or not row[1].strip():
            problems.append(f"{path}:{line}: expected 2 non-empty fields file,label, got "
                            f"{row!r}")
            continue
        file = os.path.normpath(os.path.join(path.parent, row[0].strip()))
        out.append(_Entry(file, row[1].strip(), f"{path}:{line}"))
    if problems:
        raise ClassificationDataError(_listing(problems, "malformed row(s)"))
    return out


def _listing(problems: list[str], what: str) -> str:
    more = len(problems) - MAX_LISTED
    return (f"{len(problems)} {what}:\n  " + "\n  ".join(problems[:MAX_LISTED])
            + (f"\n  ... and {more} more" if more > 0 else ""))


def _entries(tax: Taxonomy, src: ClassificationSource, report: SourceReport) -> list[_Entry]:
    path = Path(src.path)
    want_dir = src.kind == "folder"
    if not (path.is_dir() if want_dir else path.is_file()):
        key = "classification" if want_dir else "classification_csv"
        problem = "does not exist" if not path.exists() else \
            f"is not a {'folder' if want_dir else 'file'}"
        raise InputNotFoundError(f"{_source_where(tax, src)}: taxonomy {tax.name!r}: data "
                                 f"{key} {path} {problem}")
    return _folder_entries(src, report) if want_dir else _csv_entries(src)


def _check_labels(tax: Taxonomy, entries: list[_Entry], allow_unmapped: bool) -> None:
    """``ClassificationDataError`` naming every label the taxonomy does not have (with where
    it is used), unless ``allow_unmapped``."""
    if allow_unmapped:
        return
    names = [lab.name for lab in tax.labels]
    unknown: dict[str, str] = {}
    for e in entries:
        if tax.label(e.label) is None:
            unknown.setdefault(e.label, e.where)
    if unknown:
        problems = [f"{where}: label {label!r} is not a label of taxonomy {tax.name!r}"
                    f"{did_you_mean(label, names)}" for label, where in unknown.items()]
        raise ClassificationDataError(
            _listing(problems, "unknown label(s)") + f"\n(its labels: {', '.join(names)}); add "
            "them to the taxonomy (maps_to: null keeps them as OOD images) or pass "
            "--data.allow_unmapped true to drop and count them")


def _read_source(taxset: TaxonomySet, tax: Taxonomy, src: ClassificationSource,
                 allow_unmapped: bool) -> tuple[list[_Entry], list[int], SourceReport]:
    """The source's entries that stay (kept or OOD), their columns, and its report."""
    report = SourceReport(tax.name, src.path, src.kind)
    entries = _entries(tax, src, report)
    _check_labels(tax, entries, allow_unmapped)
    report.read = len(entries)
    report.labels = dict(Counter(e.label for e in entries))
    kept, columns = [], []
    for e in entries:
        label = tax.label(e.label)
        if label is None:
            report.dropped[DROP_UNMAPPED] = report.dropped.get(DROP_UNMAPPED, 0) + 1
            continue
        column = OOD if label.maps_to is None else taxset.super.column[label.maps_to]
        report.ood += column == OOD
        report.kept += column != OOD
        kept.append(e)
        columns.append(column)
    return kept, columns, report


def load_classification(taxset: TaxonomySet, allow_unmapped: bool = False,
                        workers: int = 4) -> ClassificationData:
    """Read every taxonomy's classification entries into samples, the OOD set and the report.

    Raises ``InputNotFoundError`` for a folder or CSV that does not exist (naming the YAML
    line), ``ClassificationDataError`` for a malformed CSV or an unknown label (all named at
    once, by folder or CSV line), ``MissingImagesError`` / ``ImageCheckError`` listing every
    missing or undecodable image, and ``ClassificationDataError`` when no taxonomy has a
    classification entry.
    """
    parts = [(tax, src, *_read_source(taxset, tax, src, allow_unmapped))
             for tax in taxset.taxonomies for src in tax.classification]
    if not parts:
        raise ClassificationDataError(
            "no taxonomy has a classification data entry (data: - classification: DIR or - "
            f"classification_csv: FILE); taxonomies: {', '.join(taxset.index) or 'none'}")
    refs = [ImageRef(e.path, None, None, e.where) for *_, entries, _, _ in parts for e in entries]
    hashes = iter(check_images(refs, workers))
    samples, ood, reports = [], [], []
    for tax, src, entries, columns, report in parts:
        mask = taxset.label_mask(tax.name)
        for e, column in zip(entries, columns):
            s = ClassificationSample(len(samples) + len(ood) + 1, e.path, tax.name, e.label,
                                     column, mask, next(hashes), src.path)
            (ood if column == OOD else samples).append(s)
        reports.append(report)
    report = ClassificationReport(reports, _per_class(samples, taxset))
    report.check()
    return ClassificationData(samples, ood, taxset, report)


def _per_class(samples: list[ClassificationSample], taxset: TaxonomySet) -> dict:
    counts: dict[str, Counter] = {t.name: Counter() for t in taxset.taxonomies}
    for s in samples:
        counts[s.taxonomy][taxset.names[s.column]] += 1
    return {t: {name: c[name] for name in taxset.names if c[name]} for t, c in counts.items()}
