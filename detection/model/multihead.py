"""Separate heads: a shared EfficientDet backbone + BiFPN with one class/box head pair per taxonomy.

The multitask baseline that Taxonomy Loss Masking is compared against. Every
head predicts all K super-taxonomy columns, but head ``t`` is trained only on
taxonomy ``t``'s images, under ``t``'s column mask (so it learns only the
classes ``t`` labels). The cost grows with the number of taxonomies: one head
pair each.

At prediction time (``taxonomy=None``) the heads are combined per column:

* class score of column j = mean of the sigmoid probabilities of the heads
  whose taxonomy labels j (all heads if none does), returned as a logit so
  effdet's post-processing applies unchanged;
* box of an anchor = the box of the head with the highest labeled-class
  probability at that anchor ("the most confident head regresses").
"""

from __future__ import annotations

import torch
import torch.nn as nn
from effdet import EfficientDet
from effdet.efficientdet import HeadNet, _init_weight

_EPS = 1e-6


class PerTaxonomyHeads(nn.Module):
    """Wraps an ``EfficientDet``: same outputs (per-level lists), one head pair per taxonomy.

    ``head_masks`` [T, K] bool: True where taxonomy t labels class k.
    ``forward(x [B, 3, H, W], taxonomy [B] | None)``: with ``taxonomy``, each image
    goes through its own taxonomy's heads (training); without, heads are combined.
    """

    def __init__(self, model: EfficientDet, head_masks: torch.Tensor):
        super().__init__()
        self.config = model.config
        self.backbone, self.fpn = model.backbone, model.fpn
        num_heads = head_masks.shape[0]
        self.class_nets = nn.ModuleList([model.class_net] + [self._head(self.config.num_classes)
                                                             for _ in range(num_heads - 1)])
        self.box_nets = nn.ModuleList([model.box_net]
                                      + [self._head(4) for _ in range(num_heads - 1)])
        self.register_buffer("head_masks", torch.as_tensor(head_masks, dtype=torch.bool))

    def _head(self, outputs: int) -> HeadNet:
        head = HeadNet(self.config, num_outputs=outputs)
        for n, m in head.named_modules(prefix="class_net" if outputs != 4 else "box_net"):
            _init_weight(m, n)
        return head

    def forward(self, x: torch.Tensor, taxonomy: torch.Tensor | None = None):
        feats = self.fpn(self.backbone(x))
        if taxonomy is None:
            return self._combined(feats)
        cls_levels = [None] * len(feats)
        box_levels = [None] * len(feats)
        for t in torch.unique(taxonomy).tolist():
            idx = (taxonomy == t).nonzero(as_tuple=True)[0]
            sub = [f[idx] for f in feats]
            for level, (c, b) in enumerate(zip(self.class_nets[t](sub), self.box_nets[t](sub))):
                if cls_levels[level] is None:
                    cls_levels[level] = c.new_zeros((x.shape[0],) + c.shape[1:])
                    box_levels[level] = b.new_zeros((x.shape[0],) + b.shape[1:])
                cls_levels[level] = cls_levels[level].index_copy(0, idx, c)
                box_levels[level] = box_levels[level].index_copy(0, idx, b)
        return cls_levels, box_levels

    def _combined(self, feats: list[torch.Tensor]):
        K = self.config.num_classes
        masks = self.head_masks.float()                                  # [T, K]
        unlabeled = masks.sum(0) == 0
        weights = torch.where(unlabeled[None], torch.ones_like(masks), masks)
        weights = weights / weights.sum(0, keepdim=True)                 # [T, K], columns sum to 1
        cls_all = [head(feats) for head in self.class_nets]              # T x L x [B, nA*K, H, W]
        box_all = [head(feats) for head in self.box_nets]
        cls_out, box_out = [], []
        for level in range(len(feats)):
            logits = torch.stack([c[level] for c in cls_all])            # [T, B, nA*K, H, W]
            T, B, _, H, W = logits.shape
            prob = logits.sigmoid().view(T, B, -1, K, H, W)
            mean = (prob * weights.view(T, 1, 1, K, 1, 1)).sum(0)          # [B, nA, K, H, W]
            cls_out.append(torch.logit(mean.clamp(_EPS, 1 - _EPS)).view(B, -1, H, W))
            conf = (prob * masks.view(T, 1, 1, K, 1, 1)).amax(3)          # [T, B, nA, H, W]
            best = conf.argmax(0)                                          # [B, nA, H, W]
            boxes = torch.stack([b[level] for b in box_all]).view(T, B, -1, 4, H, W)
            pick = best[None, :, :, None].expand(1, B, best.shape[1], 4, H, W)
            box_out.append(boxes.gather(0, pick)[0].reshape(B, -1, H, W))
        return cls_out, box_out
