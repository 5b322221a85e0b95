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

Coverage decoding (issue 24) is the same max over a *decoding matrix* ``M`` [K, K] bool:
``M[j, i]`` iff column ``j``'s logit counts toward column ``i``'s score. For hierarchy decoding
``M = ancestors``; ``coverage_matrix`` clears the rows of the columns a checkpoint's decoding
plan does not trust (``taxdet.supertax.decoding_rule``): a descendant-decoded column is then
scored from its trusted descendants only, and a column left with no source at all (excluded)
scores ``-inf`` (sigmoid 0: never detected). ``hierarchy_max`` takes either matrix.

    M = coverage_matrix(taxset.ancestors, taxset.names, ckpt["decoding_plan"])
    logits = hierarchy_max(logits, M)
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


PLAN_KEYS = ("descendant_decoded", "excluded")   # a decoding plan's lists of class names


def decoding_groups(matrix: np.ndarray | torch.Tensor) -> list[tuple[int, list[int]]]:
    """``[(i, [the columns j with matrix[j, i]]), ...]`` for each column whose score is not
    just its own logit (the list may be empty: excluded), in column order. ``matrix`` [K, K]
    bool: an ``ancestors`` or a ``coverage_matrix``."""
    m = ancestor_matrix(matrix)
    groups = []
    for i in range(m.shape[0]):
        members = [int(j) for j in np.flatnonzero(m[:, i])]
        if members != [i]:
            groups.append((i, members))
    return groups


def plan_columns(plan: dict | None, names: list[str]) -> dict[str, list[int]]:
    """A checkpoint's decoding plan (``{"descendant_decoded": [class, ...], "excluded": [...],
    ...}``; None: no plan) as columns per ``PLAN_KEYS``; ``ValueError`` for a class not in
    ``names``."""
    index = {n: j for j, n in enumerate(names)}
    out: dict[str, list[int]] = {}
    for key in PLAN_KEYS:
        listed = (plan or {}).get(key) or []
        unknown = [c for c in listed if c not in index]
        if unknown:
            raise ValueError(f"decoding plan {key!r} names classes the model does not have: "
                             f"{unknown}")
        out[key] = sorted(index[c] for c in listed)
    return out


def coverage_matrix(ancestors: np.ndarray | torch.Tensor, names: list[str],
                    plan: dict | None) -> np.ndarray:
    """The decoding matrix [K, K] bool of coverage decoding (module docstring): ``ancestors``
    with the rows of the plan's descendant-decoded and excluded columns cleared (no plan:
    ``ancestors`` itself, i.e. hierarchy decoding)."""
    m = ancestor_matrix(ancestors).copy()
    for cols in plan_columns(plan, names).values():
        m[cols, :] = False
    return m


def hierarchy_max(logits: torch.Tensor, ancestors: np.ndarray | torch.Tensor,
                  dim: int = -1) -> torch.Tensor:
    """``logits`` [..., K, ...] (K along ``dim``) -> same shape: each parent column replaced by
    the max over itself and its descendants; leaves unchanged. ``ancestors`` may also be a
    ``coverage_matrix``: column i becomes the max over the j with ``ancestors[j, i]``, -inf
    when there is none. Out of place, differentiable; one gather per changed column. A flat
    taxonomy returns ``logits`` itself."""
    anc = ancestor_matrix(ancestors)
    dim = dim % logits.dim()
    if logits.shape[dim] != anc.shape[0]:
        raise ValueError(f"logits have {logits.shape[dim]} columns along dim {dim}, the "
                         f"hierarchy {anc.shape[0]}")
    groups = decoding_groups(anc)
    if not groups:
        return logits
    maxed = torch.stack([_group_max(logits, cols, dim) for _, cols in groups], dim)
    parents = torch.tensor([i for i, _ in groups], device=logits.device)
    return logits.index_copy(dim, parents, maxed)


def _group_max(logits: torch.Tensor, cols: list[int], dim: int) -> torch.Tensor:
    """The max of ``logits`` over ``cols`` along ``dim`` (removed); -inf for no column."""
    if not cols:
        return torch.full_like(logits.select(dim, 0), float("-inf"))
    return logits.index_select(dim, torch.tensor(cols, device=logits.device)).amax(dim)


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
