"""One image of the super-dataset, in super-taxonomy terms."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Sample:
    """An image with boxes in super-taxonomy classes and its taxonomy's label mask.

    Boxes are [G, 4] float32 ``x1, y1, x2, y2`` in original image pixels.
    ``label_mask`` is [K] bool, True where the sample's taxonomy labels the class
    (its complement is the missing-label mask). ``ignore`` holds [R, 4] crowd /
    ignore regions in the same format: anchors overlapping them are neither
    positive nor negative.
    """

    image_id: int                       # id in the super-dataset (unique)
    file: str                           # absolute path of the image file
    width: int
    height: int
    taxonomy: str                       # source taxonomy name
    label_mask: np.ndarray              # [K] bool
    boxes: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))   # [G, 4]
    classes: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))     # [G]
    box_weights: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.float32))  # [G]
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # [R, 4]
    source_image_id: int = -1           # id in the customer's COCO file
    source_ann_ids: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))  # [G]
    content_hash: str = ""              # hex digest of the image file's bytes ("" if not computed)
    ignore_classes: np.ndarray = field(default_factory=lambda: np.zeros((0,), np.int64))  # [R]
    # column of the class each ignore region was labeled as (COCO crowd boxes keep their class)
    source_file: str = ""               # the customer's annotation file ("" if unknown)
    extra: dict = field(default_factory=dict)
    # other fields of the customer's image record (date_captured, ...), kept as they were
