"""What one customer taxonomy can say about a box: the questions the linter may ask it.

A customer labels a super class ``k`` when its label mask says so (``TaxonomySet.masks``), or
*coarsely* when it labels an ancestor of ``k``: customer A labels every ``pedestrian_child`` as
``Human`` (``person``). ``CustomerView.asked_class(k)`` is the class a customer's annotator
would have drawn for an object the model calls ``k``: the deepest labeled class among ``k``
and its ancestors, or None when the customer labels neither ``k`` nor any ancestor of it. An
object of such a class is never a missing box for that customer.

Two classes are *on one path* when one is the other or an ancestor of it (``person`` and
``pedestrian_child``); a prediction on the path of a ground-truth box's class never
contradicts it. ``label_name`` reports a class in the customer's own label names.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from taxdet.supertax import TaxonomySet


@dataclass(frozen=True)
class CustomerView:
    """One taxonomy of a ``TaxonomySet``, in the terms the linter needs.

    ``labeled`` [K] bool (the taxonomy's label mask); ``ancestors`` [K, K] bool
    (``ancestors[j, i]``: ``i`` is ``j`` or an ancestor of ``j``); ``direct`` maps a column to
    the customer label that maps to it (labels with ``maps_to: null`` have no column).
    """

    name: str
    labeled: np.ndarray
    ancestors: np.ndarray
    direct: dict[int, str]
    class_names: tuple[str, ...]

    @classmethod
    def of(cls, taxset: TaxonomySet, name: str) -> CustomerView:
        columns = taxset.label_columns(name)
        direct = {col: label for label, col in columns.items() if col is not None}
        return cls(name, np.asarray(taxset.label_mask(name), bool),
                   np.asarray(taxset.ancestors, bool), direct, tuple(taxset.names))

    def on_path(self, a: int, b: int) -> bool:
        """True if class ``a`` is ``b``, an ancestor or a descendant of it."""
        return bool(self.ancestors[a, b] or self.ancestors[b, a])

    def asked_class(self, k: int) -> int | None:
        """The deepest class the customer labels among ``k`` and its ancestors, else None."""
        chain = np.flatnonzero(self.ancestors[k] & self.labeled)   # k and its labeled ancestors
        if not len(chain):
            return None
        depth = self.ancestors[chain].sum(axis=1)                  # ancestors-or-self per class
        return int(chain[np.argmax(depth)])

    def asked_classes(self) -> np.ndarray:
        """[K] int: ``asked_class`` of every column, -1 where None."""
        return np.array([-1 if (c := self.asked_class(k)) is None else c
                         for k in range(len(self.labeled))], np.int64)

    def label_name(self, k: int) -> str:
        """The customer's label for class ``k``: its own label when one maps to ``k``; else
        the labels of the labeled classes below ``k`` joined by " or " (an exhaustive parent
        labeled through its children); else the super class name in angle brackets."""
        if k in self.direct:
            return self.direct[k]
        below = [j for j in range(len(self.labeled))
                 if j != k and self.ancestors[j, k] and j in self.direct]
        if below:
            return " or ".join(self.direct[j] for j in below)
        return f"<{self.class_names[k]}>"


def customer_views(taxset: TaxonomySet) -> dict[str, CustomerView]:
    """A ``CustomerView`` per taxonomy of the set, by name."""
    return {t.name: CustomerView.of(taxset, t.name) for t in taxset.taxonomies}
