"""Anchor targets: effdet's anchors as per-level grids (``grid``) and the batched labeler
that turns ground-truth boxes into per-anchor class and box targets (``labeler``)."""
