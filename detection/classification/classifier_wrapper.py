"""The classifier's training bench: network + masked loss, ``forward(batch) -> {"loss"}``.

It takes the batch of ``taxdet.datasets.classification_torch`` and is what the detector's
``train_step`` runs (forward, finite check, backward, clip, step). The losses are those of
``taxdet.losses.classification_loss`` with their default ``certain_cells``:

* ``softmax``: ``masked_softmax_cross_entropy`` over the sample's labeled columns that exclude
  the target (``softmax_competitors``): in a tree the target's ancestors and descendants are
  not alternatives to it (a child is also a person), so they stay out of the softmax;
* ``bce`` / ``focal``: ``masked_bce`` / ``masked_focal`` on the labeled columns, the target
  expanded with its ancestors (a ``pedestrian_child`` image is a ``person`` too);
* ``hierarchical``: ``hierarchical_bce``: as ``bce``, plus the certain cells of the tree
  (unlabeled ancestors positive, off-path classes negative).

Without taxonomy masking (``run.taxonomy_mask: false``, the naive merge) every column counts
and ``softmax`` is the plain cross-entropy over all K classes: the classifier of a plain merge.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from taxdet.detection.classification.classifier_config import ClassifierLossConfig
from taxdet.losses.ancestor_targets import expand_targets
from taxdet.losses.classification_loss import (
    hierarchical_bce,
    masked_bce,
    masked_focal,
    masked_softmax_cross_entropy,
)


def softmax_competitors(target: Tensor, class_mask: Tensor, ancestors: Tensor) -> Tensor:
    """[B, K] bool: the labeled columns a softmax may weigh against the target: ``class_mask``
    [B, K] without the target's strict ancestors and descendants (``ancestors`` [K, K] bool,
    ``ancestors[j, i]``: i is j or an ancestor of j), the target itself always in."""
    on_path = ancestors[target] | ancestors[:, target].t()      # [B, K]
    own = nn.functional.one_hot(target, class_mask.shape[1]).bool()
    return (class_mask & ~on_path) | own


def classification_loss(logits: Tensor, target: Tensor, class_mask: Tensor | None,
                        ancestors: Tensor, cfg: ClassifierLossConfig) -> Tensor:
    """The mean loss of ``cfg.name`` (module docstring). ``logits`` [B, K], ``target`` [B]
    int64 columns, ``class_mask`` [B, K] bool, or None for the naive merge: every column
    counts, and the softmax is the plain cross-entropy over all K classes."""
    if class_mask is None:
        class_mask = torch.ones_like(logits, dtype=torch.bool)
        if cfg.name == "softmax":
            return masked_softmax_cross_entropy(logits, target, class_mask)
    if cfg.name == "softmax":
        return masked_softmax_cross_entropy(
            logits, target, softmax_competitors(target, class_mask, ancestors))
    if cfg.name == "hierarchical":
        return hierarchical_bce(logits, target, class_mask, ancestors)
    multi_hot = expand_targets(target, logits.shape[1], ancestors)
    if cfg.name == "focal":
        return masked_focal(logits, multi_hot, class_mask, cfg.focal_alpha, cfg.focal_gamma)
    return masked_bce(logits, multi_hot, class_mask)


class ClassifierBench(nn.Module):
    """``forward(batch) -> {"loss": mean loss}`` for a batch of ``image`` [B, 3, S, S],
    ``target`` [B] int64 and ``label_mask`` [B, K] bool. ``taxonomy_mask=False``: every column
    counts (the naive merge)."""

    def __init__(self, model: nn.Module, ancestors: Tensor, cfg: ClassifierLossConfig,
                 taxonomy_mask: bool = True):
        super().__init__()
        self.model, self.cfg, self.taxonomy_mask = model, cfg, taxonomy_mask
        self.register_buffer("ancestors", torch.as_tensor(ancestors).bool(), persistent=False)

    def forward(self, batch: dict, teacher: nn.Module | None = None) -> dict[str, Tensor]:
        logits = self.model(batch["image"])
        mask = batch["label_mask"] if self.taxonomy_mask else None
        return {"loss": classification_loss(logits, batch["target"], mask, self.ancestors,
                                            self.cfg)}
