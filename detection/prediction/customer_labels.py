"""The labels detections are written in: the super-taxonomy's classes or one customer's labels.

The model predicts super-taxonomy columns (``category_id`` = column + 1). ``LabelSpace``
renames them for delivery:

* super-taxonomy (``super_labels``): class names, category id = column + 1, supercategory =
  the parent class;
* a customer (``customer_labels``): the customer's own label names; a label mapped to a
  class takes that column's detections and scores (a coarse label such as ``Vehicle`` takes
  the ancestor column ``vehicle``, which training fills from every descendant box). Labels
  with ``maps_to: null`` cannot be predicted: they stay in the categories (annotators may
  draw them) and are listed in ``not_predicted``. Category ids are the customer's own, read
  by name from a COCO file of that customer (its annotation file) where it names the label;
  the others follow in label order after the largest id used.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from taxdet.core.json_files import json_source
from taxdet.datasets.coco_io import CocoFormatError, coco_sections, read_categories
from taxdet.supertax import TaxonomySet


@dataclass(frozen=True)
class OutputLabel:
    """One output category: its name, id, the super column it takes (None: not predicted)."""

    name: str
    category_id: int
    column: int | None
    supercategory: str | None = None


@dataclass
class LabelSpace:
    """The categories of one output taxonomy and how super columns map to them."""

    taxonomy: str                 # the customer's name, or the super-taxonomy's
    customer: str | None          # None: super-taxonomy classes
    labels: list[OutputLabel]
    ids_from: str | None = None   # the COCO file the customer's category ids were read from

    @property
    def not_predicted(self) -> list[str]:
        """Labels the model cannot predict (``maps_to: null``)."""
        return [lab.name for lab in self.labels if lab.column is None]

    @property
    def names(self) -> dict[int, str]:
        """Category id -> name."""
        return {lab.category_id: lab.name for lab in self.labels}

    def column_labels(self) -> dict[int, list[int]]:
        """Super column -> category ids of the labels taking its detections."""
        out: dict[int, list[int]] = {}
        for lab in self.labels:
            if lab.column is not None:
                out.setdefault(lab.column, []).append(lab.category_id)
        return out

    def categories(self) -> list[dict]:
        """COCO ``categories`` in id order."""
        return [{"id": lab.category_id, "name": lab.name, "supercategory": lab.supercategory}
                for lab in sorted(self.labels, key=lambda lab: lab.category_id)]

    def relabel(self, results: list[dict]) -> list[dict]:
        """COCO results in super ids (column + 1) -> results in this space's category ids."""
        return relabel(results, self.column_labels())


def relabel(results: list[dict], column_labels: dict[int, list[int]]) -> list[dict]:
    """Each result of column ``j`` (category_id ``j + 1``) once per category id in
    ``column_labels[j]`` (input order kept); results of other columns are dropped."""
    out = []
    for r in results:
        for cat in column_labels.get(r["category_id"] - 1, ()):
            out.append({**r, "category_id": cat})
    return out


def super_labels(taxset: TaxonomySet) -> LabelSpace:
    """The super-taxonomy's classes: id = column + 1, supercategory = parent class."""
    sup = taxset.super
    return LabelSpace(sup.name, None, [OutputLabel(n, j + 1, j, sup.parent_name(j))
                                       for j, n in enumerate(sup.names)])


def read_category_ids(coco: str | Path | dict) -> tuple[dict[str, int], str]:
    """(category name -> id, source) of a COCO file's ``categories`` (checked: integer ids,
    unique names)."""
    raw, source = json_source(coco, "categories", CocoFormatError)
    cats = coco_sections(source, raw)[2]
    return {name: cat_id for cat_id, name in read_categories(source, cats).items()}, source


def default_categories_file(taxset: TaxonomySet, customer: str) -> Path | None:
    """The first annotation file of the customer's ``data:`` that exists (None without one:
    a checkpoint's taxonomies keep no data sources)."""
    for source in taxset.taxonomy(customer).data:
        if Path(source.annotations).is_file():
            return Path(source.annotations)
    return None


def customer_labels(taxset: TaxonomySet, customer: str,
                    categories: str | Path | dict | None = None) -> LabelSpace:
    """``customer``'s labels (``UnknownTaxonomyError`` naming the known ones); category ids
    from ``categories`` (a COCO file or dict, by name), default the customer's own
    annotation file when its taxonomy names one that exists, else 1..L in label order."""
    columns = taxset.label_columns(customer)  # raises for an unknown customer
    if categories is None:
        categories = default_categories_file(taxset, customer)
    ids, source = read_category_ids(categories) if categories is not None else ({}, None)
    next_id = max(ids.values(), default=0) + 1
    labels = []
    for name, column in columns.items():
        if name not in ids:
            ids[name], next_id = next_id, next_id + 1
        labels.append(OutputLabel(name, ids[name], column))
    return LabelSpace(customer, customer, labels, source)
