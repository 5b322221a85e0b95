"""Boxes per class in the customers' annotation files, read without merging.

``tools/validate_taxonomies.py`` prints these when the taxonomies have ``data:`` entries:
per taxonomy, the non-crowd annotations of each super class its labels map to (class
imbalance before training), and every category name of a file that is not a label of its
taxonomy, with a case-insensitive "did you mean" (the merge refuses such names). The merge
report counts the same per class after the merge's drops (``MergeReport.class_boxes``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np

from taxdet.datasets.coco_io import DatasetError, read_coco
from taxdet.datasets.merge import close_name
from taxdet.datasets.merge_report import class_box_rows
from taxdet.supertax import Taxonomy, TaxonomySet


@dataclass
class FileBoxes:
    """One annotation file: non-crowd annotations per category name, or why it was not read."""

    taxonomy: str
    file: str
    labels: dict[str, int] = field(default_factory=dict)
    error: str | None = None


def count_file(taxonomy: str, path: str) -> FileBoxes:
    """Count one COCO file's non-crowd annotations by category name (read errors recorded)."""
    try:
        coco = read_coco(path)
    except DatasetError as exc:
        return FileBoxes(taxonomy, path, error=str(exc))
    ids = np.array(sorted(coco.categories), np.int64)
    rows = np.searchsorted(ids, coco.annotations.category_ids[~coco.annotations.iscrowd])
    counts = np.bincount(rows, minlength=len(ids)).tolist()
    return FileBoxes(taxonomy, path, {coco.categories[c]: n for c, n in zip(ids.tolist(), counts)})


@dataclass
class DataCounts:
    """Box counts of every readable ``data:`` annotation file of one taxonomy set."""

    taxset: TaxonomySet
    files: list[FileBoxes]

    def class_boxes(self) -> dict[str, dict[str, int]]:
        """Taxonomy -> boxes per super class it labels (zeros included, column order), for
        the taxonomies with at least one file counted."""
        out = {}
        for tax in self.taxset.taxonomies:
            files = self._files_of(tax)
            if not files:
                continue
            counts = np.zeros(self.taxset.num_classes, np.int64)
            for f in files:
                for name, n in f.labels.items():
                    label = tax.label(name)
                    if label is not None and label.maps_to is not None:
                        counts[self.taxset.super.column[label.maps_to]] += n
            labeled = self.taxset.label_mask(tax.name)
            out[tax.name] = {c: int(n) for c, n, on in zip(self.taxset.names, counts, labeled)
                             if on or n}
        return out

    def _files_of(self, tax: Taxonomy) -> list[FileBoxes]:
        return [f for f in self.files if f.taxonomy == tax.name and f.error is None]

    def warnings(self) -> list[str]:
        """Unreadable files, and category names that are not labels of their taxonomy."""
        out = [f"{f.file}: not counted: {f.error}" for f in self.files if f.error]
        for tax in self.taxset.taxonomies:
            names = [lab.name for lab in tax.labels]
            for f in self._files_of(tax):
                for name, n in f.labels.items():
                    if tax.label(name) is None:
                        hint = close_name(name, names)
                        out.append(f"{f.file}: category {name!r} ({n} boxes) is not a label of "
                                   f"taxonomy {tax.name!r}"
                                   + (f"; did you mean {hint!r}?" if hint else ""))
        return out

    def render(self) -> str:
        """The class x taxonomy table, then one ``warning:`` line per problem."""
        title = (f"Boxes per class in the data: files of super-taxonomy "
                 f"{self.taxset.super.name!r} (non-crowd annotations, before the merge)")
        rows = class_box_rows(self.class_boxes(), self.taxset.names, title) or [
            f"{title}: no annotation file could be read"]
        return "\n".join(rows + [f"warning: {w}" for w in self.warnings()])

    def to_dict(self) -> dict:
        return {"boxes_per_class": self.class_boxes(),
                "files": [{"taxonomy": f.taxonomy, "file": f.file, "labels": f.labels,
                           "error": f.error} for f in self.files],
                "warnings": self.warnings()}


def count_data(taxset: TaxonomySet) -> DataCounts:
    """Count every existing ``data:`` annotation file of the set (missing files are left to
    the validation's data-path warnings)."""
    return DataCounts(taxset, [count_file(t.name, src.annotations)
                               for t in taxset.taxonomies for src in t.data
                               if os.path.isfile(src.annotations)])
