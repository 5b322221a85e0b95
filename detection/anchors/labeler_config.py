"""``LabelerConfig``: the anchor labeler's thresholds (torch-free, so that
``tools/train.py --help`` lists them without importing torch; the labeler itself is
``taxdet.detection.anchors.labeler``)."""

from __future__ import annotations

from dataclasses import dataclass

from taxdet.core.config_field import config_field
from taxdet.core.errors import ConfigError


@dataclass(frozen=True)
class LabelerConfig:
    """Anchor labeling thresholds.

    pos_iou: IoU at or above which an anchor is positive.
    neg_iou: IoU below which an anchor is negative (background); in between is IGNORE.
    force_match: also make each box's best anchor positive (effdet does).
    ignore_ioa: an anchor that is not positive and has at least this fraction of its own area
        inside an ignore / crowd region becomes IGNORE. 0.5 (half the anchor lies in the region)
        keeps anchors that merely touch a crowd region as negatives.
    block_elements, block_anchors: speed / memory knobs, not semantics. Anchors are labeled in
        blocks of whole feature-map rows, at most ``block_anchors`` anchors and about
        ``block_elements`` IoU values (B x G x block anchors; 2**21 float32 = 8 MiB) each. Small
        blocks let each block skip the boxes that cannot reach it.
    """

    pos_iou: float = config_field(0.5, "IoU at or above which an anchor is positive")
    neg_iou: float = config_field(0.4, "IoU below which an anchor is negative; in between it "
                                  "is ignored")
    force_match: bool = config_field(True, "also make each box's best anchor positive (as "
                                     "effdet does)")
    ignore_ioa: float = config_field(0.5, "a non-positive anchor with at least this fraction "
                                     "of its area inside an ignore / crowd region is ignored")
    block_elements: int = config_field(1 << 21, "speed / memory only: IoU values per labeling "
                                       "block (2**21 float32 = 8 MiB)")
    block_anchors: int = config_field(8192, "speed / memory only: most anchors per labeling "
                                      "block")

    def __post_init__(self) -> None:
        if not 0.0 < self.neg_iou <= self.pos_iou <= 1.0:
            raise ConfigError("need 0 < neg_iou <= pos_iou <= 1, got "
                              f"neg_iou={self.neg_iou}, pos_iou={self.pos_iou}")
        if not 0.0 < self.ignore_ioa <= 1.0:
            raise ValueError(f"need 0 < ignore_ioa <= 1, got {self.ignore_ioa}")
        if self.block_elements < 1 or self.block_anchors < 1:
            raise ValueError("block_elements and block_anchors must be positive, got "
                             f"{self.block_elements} and {self.block_anchors}")

    def anchors_per_block(self, rows: int) -> int:
        """Block size in anchors when each anchor meets ``rows`` (B x G or B x R) boxes."""
        return max(1, min(self.block_anchors, self.block_elements // max(1, rows)))
