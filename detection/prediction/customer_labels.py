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
  by name from a COCO file of that customer (its annotation file), which must name every label
  the model predicts (else ``CategoryIdsError``: not this customer's file); ``maps_to: null``
  labels it lacks follow after its largest id. Without a file the ids are 1..L in label order
  and ``LabelSpace.own_ids`` is False: fine where only names count (Label Studio), never
  written as the customer's ids.

``customer_id_space`` finds the customer's file as ``tools/predict.py`` does: ``--categories``,
else the ``data:`` of ``--taxonomies``, else the ``data:`` of the taxonomy files the checkpoint
was trained with (its config's ``data.taxonomies``, when they still hold this customer's labels
unchanged); none found is a ``CategoryIdsError`` naming the flags that would supply the ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from taxdet.core.errors import InputError
from taxdet.core.json_files import json_source
from taxdet.datasets.coco_io import CocoFormatError, coco_sections, read_categories
from taxdet.supertax import TaxonomySet

IDS_FLAGS = ("--categories FILE (the customer's own COCO annotation file) or --taxonomies PATH "
             "(taxonomy files whose data: names it)")


class CategoryIdsError(InputError, ValueError):
    """A customer's category ids cannot be determined, or a file's are not that customer's."""


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
    def own_ids(self) -> bool:
        """The ids are the output taxonomy's own (super classes, or a customer file's)."""
        return self.customer is None or self.ids_from is not None

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
    from ``categories`` (a COCO file or dict, by name; ``CategoryIdsError`` when it lacks a
    predicted label), default the customer's own annotation file when its taxonomy names one
    that exists, else 1..L in label order (``own_ids`` False)."""
    columns = taxset.label_columns(customer)  # raises for an unknown customer
    if categories is None:
        categories = default_categories_file(taxset, customer)
    ids, source = read_category_ids(categories) if categories is not None else ({}, None)
    if source is not None:
        check_customer_file(ids, columns, customer, source)
    next_id = max(ids.values(), default=0) + 1
    labels = []
    for name, column in columns.items():
        if name not in ids:
            ids[name], next_id = next_id, next_id + 1
        labels.append(OutputLabel(name, ids[name], column))
    return LabelSpace(customer, customer, labels, source)


def check_customer_file(ids: dict[str, int], columns: dict[str, int | None], customer: str,
                        source: str) -> None:
    """``CategoryIdsError`` when the file's category names lack a label the model predicts:
    its ids are not this customer's."""
    lacking = [n for n, j in columns.items() if j is not None and n not in ids]
    if lacking:
        raise CategoryIdsError(
            f"{source}: its categories ({', '.join(ids) or 'none'}) lack {customer}'s labels "
            f"{lacking}: not {customer}'s annotation file; give {customer}'s own file with "
            "--categories")


@dataclass(frozen=True)
class TrainingTaxonomies:
    """The taxonomy files a checkpoint was trained with (its config's ``data.taxonomies`` and
    ``data.super_taxonomy``): where its customers' annotation files are named."""

    paths: tuple[str, ...]
    super_name: str | None = None

    def load(self, taxset: TaxonomySet, customer: str) -> tuple[TaxonomySet | None, str]:
        """(the files' taxonomies, "") when they load and hold ``customer``'s labels as
        ``taxset`` (the checkpoint's) has them; else (None, why not)."""
        import taxdet.supertax as supertax
        where = " ".join(self.paths)
        try:
            loaded = supertax.load(list(self.paths), super_name=self.super_name)
        except (InputError, OSError) as exc:
            return None, f"the checkpoint's training taxonomies ({where}) cannot be read here " \
                         f"({str(exc).splitlines()[0]})"
        if (customer not in loaded.index or loaded.taxonomy(customer).to_dict()
                != taxset.taxonomy(customer).to_dict()):
            return None, f"the checkpoint's training taxonomies ({where}) no longer hold " \
                         f"{customer}'s labels as the checkpoint has them"
        return loaded, ""


def annotation_files(taxset: TaxonomySet, customer: str) -> list[str]:
    """The annotation files of ``customer``'s ``data:`` (existing or not)."""
    return [src.annotations for src in taxset.taxonomy(customer).data]


def customer_id_space(taxset: TaxonomySet, customer: str, *,
                      categories: str | Path | None = None,
                      training: TrainingTaxonomies | None = None) -> LabelSpace:
    """``customer``'s labels in its own category ids (module docstring): from ``categories``,
    else ``taxset``'s ``data:`` (``--taxonomies``), else ``training``'s; ``CategoryIdsError``
    naming what was tried and the flags that would supply them. Never 1..L."""
    taxset.taxonomy(customer)  # an unknown customer: UnknownTaxonomyError naming the known
    if categories is not None:
        return customer_labels(taxset, customer, categories)
    tried, why = list(annotation_files(taxset, customer)), []
    sets = [taxset]
    if training is not None and training.paths:
        loaded, reason = training.load(taxset, customer)
        sets += [loaded] if loaded is not None else []
        why += [reason] if reason else []
        tried += annotation_files(loaded, customer) if loaded is not None else []
    for candidate in sets:
        found = default_categories_file(candidate, customer)
        if found is not None:
            return customer_labels(taxset, customer, found)
    why.append(f"no annotation file of {customer} exists here"
               + (f" (tried {', '.join(dict.fromkeys(tried))})" if tried else
                  " (its taxonomy names no data: annotation file)"))
    raise CategoryIdsError(f"cannot determine {customer}'s own category ids: "
                           + "; ".join(why) + f". Give {IDS_FLAGS}; ids are never guessed")
