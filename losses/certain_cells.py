"""Which cells of a partially labeled sample are certain: the rules of ``certain_cells``.

A sample's taxonomy labels some classes (``class_mask [B, K]``, True = labeled). Strict
masking trains only those columns. Under the super-taxonomy's tree semantics (one object is
one path from a root down to its class) a labeled box says more:

================================  =======  ===========  ========  ==================
anchor \\ column                   labeled  unlabeled    unlabeled  unlabeled strict
                                           ancestor     off-path   descendant of c
================================  =======  ===========  ========  ==================
assigned to a box of class c      label    positive     negative  masked
================================  =======  ===========  ========  ==================

At a background anchor an unlabeled column whose ancestor (or itself) *is* labeled is a
certain negative (inherited negatives); without a labeled ancestor it stays masked, since
the anchor may hold an object the customer does not label.

The rules switch on cumulatively (``CERTAIN_CELLS``):

* ``none``: strict masking, the labeled columns only.
* ``positives``: + ancestor positives (a car box trains ``vehicle`` for a customer that
  labels ``car`` only).
* ``rows``: + off-path negatives at assigned anchors (a labeled car is certainly no person).
* ``all``: + inherited negatives at background anchors.

Rows are ``[P, K]`` for P assigned anchors, the background weights ``[B, K]``.
"""

from __future__ import annotations

import torch
from torch import Tensor

from taxdet.losses.loss_config import CERTAIN_CELLS


def check_rule(rule: str) -> None:
    if rule not in CERTAIN_CELLS:
        raise ValueError(f"certain_cells must be one of {CERTAIN_CELLS}, got {rule!r}")


def positive_row_weights(classes: Tensor, row_mask: Tensor, ancestors: Tensor | None,
                         rule: str) -> Tensor:
    """Which cells count on the rows of anchors assigned to a box: ``[P, K] bool``.

    ``classes [P] int64`` (each row's box class column), ``row_mask [P, K] bool`` (the
    labeled columns of each row's sample), ``ancestors [K, K] bool`` or None (flat: each
    class is its own only ancestor and descendant).
    """
    check_rule(rule)
    if rule == "none":
        return row_mask
    K = row_mask.shape[-1]
    anc = ancestors if ancestors is not None else torch.eye(K, dtype=torch.bool,
                                                            device=row_mask.device)
    if rule == "positives":
        return row_mask | anc[classes]
    # column i is a strict descendant of c iff anc[i, c] and i != c
    strict_desc = anc.t()[classes]
    strict_desc[torch.arange(len(classes), device=classes.device), classes] = False
    return row_mask | ~strict_desc


def background_weights(class_mask: Tensor, ancestors: Tensor | None, rule: str) -> Tensor:
    """Which cells count on background anchors: ``[B, K] bool``.

    With ``rule == "all"`` a column counts when it or any of its ancestors is labeled
    (inherited negatives); otherwise the labeled columns only.
    """
    check_rule(rule)
    if rule != "all" or ancestors is None:
        return class_mask
    # column i counts iff some labeled j has anc[i, j] (j is i or an ancestor of i)
    return (class_mask.float() @ ancestors.t().float()) > 0
