"""Special anchor-target values, named once for the labeler, the losses and the benches.

Anchor class targets are [B, A] int64: a super-taxonomy column ``0..K-1`` for a
positive anchor, or one of the values below. They equal effdet's encoding, so
targets from ``effdet.anchors.AnchorLabeler`` (after its 1-based shift) and ours
are interchangeable.
"""

BACKGROUND = -1  # negative anchor: every (labeled) class column is a negative
IGNORE = -2      # unassigned anchor (IoU band, crowd / ignore region): no class loss at all
PADDING = -1     # ground-truth class value of a padding row in [B, G] batches (no box)
