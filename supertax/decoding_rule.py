"""Which columns a detector cannot score on their own, and how they are decoded instead.

A column that (almost) never trained against background anchors learns to fire everywhere
(issue 24: a parent no customer labels got negatives only at other classes' boxes). Coverage
decoding (``--decoding coverage``, the default) therefore scores such a column from its
descendants and drops it when it has none:

* **descendant-decoded**: a *weak* column (too few background negatives) with at least one
  trusted strict descendant: its score is the max over its trusted descendants' scores, its
  own column is ignored;
* **excluded**: a column without any background negative and without a descendant, or a weak
  column whose descendants are all untrusted: it is never predicted.

A column is trusted when it is neither. The training run applies this rule to its coverage
counts (``taxdet.detection.training.coverage.decoding_plan``); the validator and the start of
training apply it to the columns the taxonomies alone leave without background negatives
(``never_background``), so they announce the same decoding.

``ancestors`` [K, K] bool is ``SuperTaxonomy.ancestors``: ``ancestors[j, i]`` is True iff ``i``
is ``j`` or an ancestor of ``j``.
"""

from __future__ import annotations

import numpy as np


def strict_descendants(ancestors: np.ndarray) -> np.ndarray:
    """[K, K] bool: ``out[j, i]`` iff ``j`` is a strict descendant of ``i``."""
    anc = np.asarray(ancestors, dtype=bool)
    return anc & ~np.eye(anc.shape[0], dtype=bool)


def untrusted_columns(ancestors: np.ndarray, weak: np.ndarray, unseen: np.ndarray
                      ) -> tuple[np.ndarray, np.ndarray]:
    """``(descendant_decoded [K] bool, excluded [K] bool)`` (module docstring) for ``weak``
    [K] bool (background negatives below the floor) and ``unseen`` [K] bool (none at all;
    an unseen column is weak too)."""
    below = strict_descendants(ancestors)
    weak = np.asarray(weak, dtype=bool) | np.asarray(unseen, dtype=bool)
    has_desc = below.any(axis=0)
    decoded = weak & has_desc
    excluded = np.asarray(unseen, dtype=bool) & ~has_desc
    trusted = ~(decoded | excluded)
    orphans = decoded & ~(below & trusted[:, None]).any(axis=0)  # every descendant untrusted
    return decoded & ~orphans, excluded | orphans


def never_background(ancestors: np.ndarray, labeled: np.ndarray) -> np.ndarray:
    """[K] bool: columns no taxonomy labels, nor any of their ancestors (``labeled`` [K] bool:
    labeled by some taxonomy, ``exhaustive`` closure included). Under ``certain_cells all``
    (the default) they get no background negative: a background anchor is a certain negative
    only for the classes its taxonomy labels and their descendants."""
    anc = np.asarray(ancestors, dtype=bool)
    never: np.ndarray = ~(anc & np.asarray(labeled, dtype=bool)[None, :]).any(axis=1)
    return never
