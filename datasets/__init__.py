"""Customer COCO datasets merged into one super-dataset with per-sample missing-label masks.

Typical use::

    import supertax
    from datasets import MergeConfig, SuperDataset, merge
    ts = supertax.load(["taxonomies/driving"])
    ds, report = merge(ts, MergeConfig())
    print(report.table())
    ds.write("super.json")
    same = SuperDataset.load("super.json", ts)
"""

from datasets.coco_io import (CocoFile, CocoFormatError, DatasetError, DuplicateIdError,
                              read_coco)
from datasets.images import ImageCheckError, MissingImagesError, check_images
from datasets.merge import DuplicateImageError, MergeConfig, UnmappedCategoryError, merge
from datasets.merge_report import Counts, FileReport, MergeReport
from datasets.sample import Sample
from datasets.superset import SuperDataset

__all__ = [
    "CocoFile", "CocoFormatError", "DatasetError", "DuplicateIdError", "read_coco",
    "ImageCheckError", "MissingImagesError", "check_images", "DuplicateImageError",
    "MergeConfig", "UnmappedCategoryError", "merge", "Counts", "FileReport", "MergeReport",
    "Sample", "SuperDataset",
]
