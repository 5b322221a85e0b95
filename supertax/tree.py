"""The super-taxonomy: a tree of classes, one output column per node.

Columns follow the declared order, depth first (a parent before its
children), so ``K = len(super_taxonomy.names)`` and column ``j`` is
``names[j]``. This order is part of the taxonomy hash: a model is never
paired with another order.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from taxdet.supertax.yamlpos import Pos

NO_PARENT = -1


@dataclass
class SuperClass:
    """One node of the super-taxonomy tree."""

    name: str
    exhaustive: bool = False
    children: list[SuperClass] = field(default_factory=list)
    pos: Pos | None = None


@dataclass
class SuperTaxonomy:
    """A named tree of classes; see the README for the YAML format."""

    name: str
    roots: list[SuperClass]
    path: str | None = None
    pos: Pos | None = None  # of the document
    value_pos: dict[str, Pos] = field(default_factory=dict, repr=False)  # top-level key -> value

    @cached_property
    def nodes(self) -> list[SuperClass]:
        """All nodes in column order (depth first, declared order)."""
        out: list[SuperClass] = []

        def visit(node: SuperClass) -> None:
            out.append(node)
            for child in node.children:
                visit(child)

        for root in self.roots:
            visit(root)
        return out

    @cached_property
    def names(self) -> list[str]:
        return [n.name for n in self.nodes]

    @property
    def num_classes(self) -> int:
        """K: the number of output columns."""
        return len(self.nodes)

    @cached_property
    def column(self) -> dict[str, int]:
        """Class name -> column index."""
        return {name: j for j, name in enumerate(self.names)}

    @cached_property
    def parent(self) -> np.ndarray:
        """[K] int64: column of each node's parent, ``NO_PARENT`` for roots."""
        parent = np.full(self.num_classes, NO_PARENT, dtype=np.int64)
        for node in self.nodes:
            for child in node.children:
                parent[self.column[child.name]] = self.column[node.name]
        return parent

    @cached_property
    def children(self) -> list[list[int]]:
        """Columns of each node's direct children."""
        return [[self.column[c.name] for c in node.children] for node in self.nodes]

    @cached_property
    def exhaustive(self) -> np.ndarray:
        """[K] bool: the node is marked ``exhaustive``."""
        return np.array([n.exhaustive for n in self.nodes], dtype=bool)

    @cached_property
    def ancestors(self) -> np.ndarray:
        """[K, K] bool: ``ancestors[j, i]`` is True iff ``i`` is ``j`` or an ancestor of ``j``.

        A box of class ``j`` is a positive for every column of row ``j``:
        ``targets = one_hot @ ancestors``.
        """
        mat = np.eye(self.num_classes, dtype=bool)
        for j in range(self.num_classes):
            i = self.parent[j]
            while i != NO_PARENT:
                mat[j, i] = True
                i = self.parent[i]
        return mat

    def depth(self, j: int) -> int:
        """Number of ancestors of column ``j`` (roots have depth 0)."""
        return int(self.ancestors[j].sum()) - 1

    def parent_name(self, j: int) -> str | None:
        p = self.parent[j]
        return None if p == NO_PARENT else self.names[p]

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form (the YAML format), used for hashing and checkpoints."""

        def node_dict(node: SuperClass) -> dict[str, Any]:
            out: dict[str, Any] = {"name": node.name}
            if node.exhaustive:
                out["exhaustive"] = True
            if node.children:
                out["children"] = [node_dict(c) for c in node.children]
            return out

        return {"kind": "super-taxonomy", "name": self.name,
                "classes": [node_dict(r) for r in self.roots]}
