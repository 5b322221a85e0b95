"""Customer COCO datasets merged into one super-dataset with per-sample missing-label masks.

Typical use::

    import taxdet.supertax as supertax
    from taxdet.datasets import MergeConfig, SuperDataset, merge
    ts = supertax.load(["taxonomies/driving"])
    ds, report = merge(ts, MergeConfig())
    print(report.table())
    ds.write("super.json")
    same = SuperDataset.load("super.json", ts)
"""

from taxdet.datasets.coco_io import (
                              CocoFile,
                              CocoFormatError,
                              DatasetError,
                              DuplicateIdError,
                              read_coco,
)
from taxdet.datasets.images import ImageCheckError, MissingImagesError, check_images
from taxdet.datasets.merge import DuplicateImageError, MergeConfig, UnmappedCategoryError, merge
from taxdet.datasets.merge_report import Counts, FileReport, MergeReport
from taxdet.datasets.sample import Sample
from taxdet.datasets.superset import SuperDataset

__all__ = [
    "CocoFile", "CocoFormatError", "DatasetError", "DuplicateIdError", "read_coco",
    "ImageCheckError", "MissingImagesError", "check_images", "DuplicateImageError",
    "MergeConfig", "UnmappedCategoryError", "merge", "Counts", "FileReport", "MergeReport",
    "Sample", "SuperDataset",
]
