"""Coarse boxes teach their children: a set-level loss at boxes labeled only with a parent.

A customer that labels an object under a parent's name (``Human`` for a child) leaves the
parent's children masked at that box: each child alone may or may not be the object. But one
object is one path down the tree, so (for an exhaustive parent) *some* child is positive. The
``noisy_or`` rule trains that set: with ``P = 1 - prod_c (1 - p_c)`` over the box's children
``c`` whose cells are still masked at that anchor, the set is one focal positive of
probability ``P``: ``-alpha (1 - P)^gamma log P`` (``alpha = 1, gamma = 0`` gives the plain
noisy-OR ``-log(1 - prod_c (1 - p_c))``). The children's own cells stay masked individually.

Its gradient pushes every child's logit up, in proportion to ``p_c``, while no child is
confident, and vanishes once one is. Children a rule already decides (a labeled column, a
pseudo-label) are not in the set; a box whose class has no masked child gets no term.
"""

from __future__ import annotations

import torch
from torch import Tensor

from taxdet.losses.cell_plan import CellPlan

_SMALL = 1e-6   # below this -log(1 - P), log P is computed as log sum p (see _log_any)


def child_matrix(ancestors: Tensor) -> Tensor:
    """``children [K, K] bool``: ``children[c, j]`` iff j is a direct child of c.

    ``ancestors [K, K] bool`` (``ancestors[j, i]``: i is j or an ancestor of j). The parent of
    j is its strict ancestor with the most ancestors of its own (the deepest).
    """
    K = ancestors.shape[0]
    strict = ancestors & ~torch.eye(K, dtype=torch.bool, device=ancestors.device)
    depth = ancestors.sum(1)                                             # [K]: 1 for a root
    parent = (strict.long() * depth.unsqueeze(0)).argmax(1)              # [K]
    has_parent = strict.any(1)
    children = torch.zeros(K, K, dtype=torch.bool, device=ancestors.device)
    j = has_parent.nonzero(as_tuple=True)[0]
    children[parent[j], j] = True
    return children


def coarse_sets(classes: Tensor, row_weights: Tensor, children: Tensor,
                parents: Tensor | None = None) -> Tensor:
    """``[P, K] bool``: at each assigned anchor, the box class's children still masked there.

    ``classes [P]`` the box columns, ``row_weights [P, K]`` the rows' cell weights (0 =
    masked), ``children [K, K] bool`` from ``child_matrix``; ``parents [K] bool`` (optional)
    limits the rule to those box classes (e.g. the exhaustive ones).
    """
    sets = children[classes] & (row_weights == 0)
    if parents is not None:
        sets &= parents[classes].unsqueeze(1)
    return sets


def _log_any(x: Tensor, member: Tensor) -> tuple[Tensor, Tensor]:
    """``(log P, log(1 - P))`` per row, ``[R]`` each, for ``P = 1 - prod_{member} (1 - p)``.

    ``x [R, K]`` float32 logits, ``member [R, K] bool`` (at least one per row). Where
    ``1 - P`` rounds to 1 (every member far below zero), ``log P`` is the first-order
    ``log sum p`` (relative error below 1e-6), so the gradient never dies.
    """
    f = torch.nn.functional
    none = torch.where(member, f.softplus(x), 0.0).sum(1)               # -log(1 - P) >= 0
    small = none < _SMALL
    exact = torch.log(-torch.expm1(-torch.where(small, 1.0, none)))     # no inf in backward
    first_order = torch.logsumexp(torch.where(member, f.logsigmoid(x), -torch.inf), dim=1)
    return torch.where(small, first_order, exact), -none


def noisy_or_sum(row_logits: Tensor, sets: Tensor, alpha: float, gamma: float) -> Tensor:
    """Sum over rows with a non-empty set of ``-alpha (1 - P)^gamma log P``, a scalar.

    ``row_logits [P, K]`` (differentiable, any float dtype; the math is float32),
    ``sets [P, K] bool`` from ``coarse_sets``; ``P = 1 - prod_{c in set} sigmoid(-x_c)``.
    """
    rows = sets.any(1)
    if not bool(rows.any()):
        return row_logits.new_zeros((), dtype=torch.float32)
    log_p, log_none = _log_any(row_logits[rows].float(), sets[rows])
    modulation = torch.exp(log_none * gamma) if gamma else torch.ones_like(log_p)  # (1 - P)^g
    return -(alpha * modulation * log_p).sum()


def planned_coarse_sum(logits: Tensor, cls_targets: Tensor, plan: CellPlan, ancestors: Tensor,
                       alpha: float, gamma: float, parents: Tensor | None = None) -> Tensor:
    """The ``noisy_or`` term of a ``[B, A, K]`` logit block under its ``CellPlan``, a scalar
    (unnormalised): the sets are the masked children (``plan.row_weights == 0``) of each
    assigned anchor's class; ``cls_targets [B, A]``, ``ancestors [K, K] bool``."""
    if plan.row_weights is None:                 # no class mask: every child cell is decided
        return logits.new_zeros((), dtype=torch.float32)
    sets = coarse_sets(cls_targets[plan.index], plan.row_weights, child_matrix(ancestors),
                       parents)
    return noisy_or_sum(logits[plan.index], sets, alpha, gamma)
