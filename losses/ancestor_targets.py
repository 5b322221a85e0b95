"""Hierarchical (ancestor-expanded) multi-hot targets from class columns."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def as_ancestors(ancestors: Tensor | np.ndarray, num_classes: int,
                 device: torch.device | None = None) -> Tensor:
    """Check and convert an ancestor matrix to a ``[K, K] bool`` tensor on ``device``.

    ``ancestors[j, i]`` is True iff column i is j or an ancestor of j (``TaxonomySet.ancestors``),
    so row j is the multi-hot target of a class-j object. Raises ``ValueError`` when the shape
    is not [K, K] or a diagonal entry is False (a class would not be positive for itself).
    """
    anc = torch.as_tensor(ancestors, device=device)
    if anc.shape != (num_classes, num_classes):
        raise ValueError(f"ancestors: expected shape [K, K] = [{num_classes}, {num_classes}], "
                         f"got {list(anc.shape)}")
    anc = anc.bool()
    bad = (~anc.diagonal()).nonzero().flatten().tolist()
    if bad:
        raise ValueError(f"ancestors: diagonal must be True (class j is positive for itself); "
                         f"False at columns {bad}")
    return anc


def expand_targets(classes: Tensor, num_classes: int, ancestors: Tensor | None = None) -> Tensor:
    """Multi-hot float32 targets ``[N, K]`` for class columns ``classes [N] int64``.

    A column j >= 0 becomes row j of ``ancestors`` (itself and its ancestors), or a
    one-hot row when ``ancestors`` is None. Negative values (BACKGROUND, IGNORE) give
    all-zero rows; the caller decides whether such a row counts.
    Raises ``ValueError`` for a column >= K.
    """
    if classes.numel() and int(classes.max()) >= num_classes:
        raise ValueError(f"class column {int(classes.max())} out of range for K = {num_classes}")
    positive = classes >= 0
    index = classes.clamp(min=0)
    if ancestors is None:
        rows = torch.nn.functional.one_hot(index, num_classes).bool()
    else:
        rows = ancestors.to(classes.device)[index]
    return (rows & positive.unsqueeze(-1)).float()
