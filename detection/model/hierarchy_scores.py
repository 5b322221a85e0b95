"""Hierarchy-consistent scores: a detection of class j is also evidence for every ancestor of j.

Each parent column's score at each anchor becomes the max of its own score and the scores of
all its descendants (the Open Images hierarchical metric expands detections to ancestors the
same way). Leaf columns are unchanged. The sigmoid is monotonic, so the max of the logits is the
logit of the max of the scores. ``PredictBench`` applies it before top-k and NMS when its
``hierarchy`` is set (``taxdet.detection.prediction.hierarchy_decoding`` switches it).

    logits = hierarchy_max(logits, taxset.ancestors)         # [..., K] -> [..., K]

``ancestors`` [K, K] bool is ``supertax.TaxonomySet.ancestors``: ``ancestors[j, i]`` is True iff
``i`` is ``j`` or an ancestor of ``j``; the descendants of ``i`` are the ``j`` with
``ancestors[j, i]``. ``taxdet.detection.export.postprocess`` applies the same rule in NumPy to the
outputs of an exported model (``hierarchy_groups`` gives it the columns).
"""

from __future__ import annotations

import numpy as np
import torch


def ancestor_matrix(ancestors: np.ndarray | torch.Tensor) -> np.ndarray:
    """``ancestors`` as a [K, K] bool NumPy array (``ValueError`` for another shape)."""
    anc = np.asarray(ancestors.cpu() if isinstance(ancestors, torch.Tensor) else ancestors,
                     dtype=bool)
    if anc.ndim != 2 or anc.shape[0] != anc.shape[1]:
        raise ValueError(f"ancestors must be a square [K, K] matrix, got shape {anc.shape}")
    return anc


def hierarchy_groups(ancestors: np.ndarray | torch.Tensor) -> list[tuple[int, list[int]]]:
    """``[(parent i, [i and every descendant of i]), ...]`` for each column with at least one
    strict descendant, in column order. ``ancestors`` [K, K] bool (module docstring)."""
    anc = ancestor_matrix(ancestors)
    groups = []
    for i in range(anc.shape[0]):
        members = np.flatnonzero(anc[:, i] | (np.arange(anc.shape[0]) == i))
        if len(members) > 1:
            groups.append((i, [int(j) for j in members]))
    return groups


def has_hierarchy(ancestors: np.ndarray | torch.Tensor) -> bool:
    """True iff some class has a parent (``ancestors`` [K, K] has an off-diagonal True)."""
    return bool(hierarchy_groups(ancestors))


def hierarchy_max(logits: torch.Tensor, ancestors: np.ndarray | torch.Tensor,
                  dim: int = -1) -> torch.Tensor:
    """``logits`` [..., K, ...] (K along ``dim``) -> same shape: each parent column replaced by
    the max over itself and its descendants; leaves unchanged. Out of place, differentiable;
    one gather per parent column. A flat taxonomy returns ``logits`` itself."""
    anc = ancestor_matrix(ancestors)
    dim = dim % logits.dim()
    if logits.shape[dim] != anc.shape[0]:
        raise ValueError(f"logits have {logits.shape[dim]} columns along dim {dim}, the "
                         f"hierarchy {anc.shape[0]}")
    groups = hierarchy_groups(anc)
    if not groups:
        return logits
    maxed = torch.stack([logits.index_select(dim, torch.tensor(cols, device=logits.device))
                         .amax(dim) for _, cols in groups], dim)
    parents = torch.tensor([i for i, _ in groups], device=logits.device)
    return logits.index_copy(dim, parents, maxed)


def hierarchy_max_levels(cls_levels: list[torch.Tensor], ancestors: np.ndarray | torch.Tensor,
                         num_classes: int) -> list[torch.Tensor]:
    """``hierarchy_max`` on effdet's per-level class outputs, each [B, nA * K, H, W]
    (anchor-major channels: channel ``a * K + k``); same shapes back."""
    out = []
    for level in cls_levels:
        B, C, H, W = level.shape
        per_class = level.view(B, C // num_classes, num_classes, H, W)
        out.append(hierarchy_max(per_class, ancestors, dim=2).reshape(B, C, H, W))
    return out
