"""Customer taxonomies and what they label in the super-taxonomy.

The three answers everything downstream needs, for a taxonomy ``t`` over a
super-taxonomy with K columns:

* ``label_mask(t, sup)`` -- [K] bool, True where ``t`` labels the class. Its
  complement is the *missing-label mask*: the columns Taxonomy Loss Masking
  ignores for ``t``'s images.
* ``sup.ancestors`` -- [K, K] target expansion (in ``taxdet.supertax.tree``).
* ``label_columns(t, sup)`` -- customer label -> column, to report a model's
  scores back in the customer's own names.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Any

import numpy as np

from taxdet.supertax.tree import SuperTaxonomy
from taxdet.supertax.yamlpos import Pos


@dataclass
class Label:
    """One of the customer's label names and the super class it maps to (None: dropped)."""

    name: str
    maps_to: str | None
    box_weight: float = 1.0
    pos: Pos | None = None  # of the name
    maps_to_pos: Pos | None = None


@dataclass
class DataSource:
    """A COCO annotation file and its image folder (absolute or relative to the YAML file).

    ``annotations_pos`` / ``images_pos``: where the paths are written, when read from a file.
    """

    annotations: str
    images: str
    annotations_pos: Pos | None = field(default=None, repr=False, compare=False)
    images_pos: Pos | None = field(default=None, repr=False, compare=False)


@dataclass
class ClassificationSource:
    """An image-classification dataset: a folder in ``ImageFolder`` layout (``kind="folder"``:
    one sub-folder per label name) or a CSV file of ``file,label`` rows (``kind="csv"``: files
    relative to the CSV's folder). ``path`` is absolute (resolved against the YAML file's
    folder when read); ``pos``: where it is written."""

    kind: str
    path: str
    pos: Pos | None = field(default=None, repr=False, compare=False)


@dataclass
class Taxonomy:
    """A customer taxonomy; see the README for the YAML format."""

    name: str
    super_taxonomy: str
    labels: list[Label]
    sampling_weight: float = 1.0
    data: list[DataSource] = field(default_factory=list)
    path: str | None = None
    pos: Pos | None = None  # of the document
    value_pos: dict[str, Pos] = field(default_factory=dict, repr=False)  # top-level key -> value
    classification: list[ClassificationSource] = field(default_factory=list)  # data: entries

    def label(self, name: str) -> Label | None:
        return next((lab for lab in self.labels if lab.name == name), None)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form of what changes a model's meaning (hashing and checkpoints).

        Data paths are left out: where the images live does not change the classes.
        """
        return {"kind": "taxonomy", "name": self.name, "super_taxonomy": self.super_taxonomy,
                "labels": [{"name": lab.name, "maps_to": lab.maps_to, "box_weight": lab.box_weight}
                           for lab in self.labels],
                "sampling_weight": self.sampling_weight}


class Coverage(str, Enum):
    """How a taxonomy covers one super class (a cell of the coverage matrix)."""

    LABELED = "labeled"
    COARSE = "coarse"  # not labeled itself, but an ancestor is: the customer never tells it apart
    MISSING = "missing"


def mapped_columns(tax: Taxonomy, sup: SuperTaxonomy) -> np.ndarray:
    """[K] bool: columns some label of ``tax`` maps to directly."""
    out = np.zeros(sup.num_classes, dtype=bool)
    for lab in tax.labels:
        if lab.maps_to is not None and lab.maps_to in sup.column:
            out[sup.column[lab.maps_to]] = True
    return out


def label_mask(tax: Taxonomy, sup: SuperTaxonomy) -> np.ndarray:
    """[K] bool: True where ``tax`` labels the class.

    A class is labeled if some label maps to it, or if it is ``exhaustive`` and
    all its children are labeled (applied bottom-up, so recursively).
    """
    labeled = mapped_columns(tax, sup)
    for j in reversed(range(sup.num_classes)):  # children come after parents: reverse is bottom-up
        kids = sup.children[j]
        if sup.exhaustive[j] and kids and labeled[kids].all():
            labeled[j] = True
    return labeled


def missing_mask(tax: Taxonomy, sup: SuperTaxonomy) -> np.ndarray:
    """[K] bool: True where ``tax`` does NOT label the class (the columns to mask)."""
    return ~label_mask(tax, sup)


def coverage(tax: Taxonomy, sup: SuperTaxonomy) -> list[Coverage]:
    """One ``Coverage`` per column: labeled, coarse only (an ancestor is labeled), or missing."""
    labeled = label_mask(tax, sup)
    strict_ancestors = sup.ancestors & ~np.eye(sup.num_classes, dtype=bool)
    coarse = (strict_ancestors & labeled[None, :]).any(axis=1)
    return [Coverage.LABELED if labeled[j] else Coverage.COARSE if coarse[j] else Coverage.MISSING
            for j in range(sup.num_classes)]


def label_columns(tax: Taxonomy, sup: SuperTaxonomy) -> dict[str, int | None]:
    """Customer label name -> super-taxonomy column (None for ``maps_to: null``)."""
    return {lab.name: None if lab.maps_to is None else sup.column[lab.maps_to]
            for lab in tax.labels}
