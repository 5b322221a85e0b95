"""The super-dataset: samples in super-taxonomy terms, stored as one COCO file (``super.json``).

File format (a valid COCO file; see the README):

* categories: ``id = column + 1``, ``name``, ``supercategory`` = parent class name or null;
* images: ``id``, ``file_name`` (relative to the folder of the JSON file; absolute paths are
  accepted on load), ``width``, ``height``, ``taxonomy``, ``missing_classes`` (names),
  ``content_hash``, ``source_image_id``, ``source_file`` (the customer's annotation file), then
  every other field of the customer's image record (``date_captured``, ...) as it was; a
  customer field named like one of the merge's own is not copied;
* annotations: ``id``, ``image_id``, ``category_id``, ``bbox`` xywh, ``area``, ``iscrowd``;
  boxes (``iscrowd = 0``) also carry ``box_weight`` and ``source_ann_id``; ignore regions are
  ``iscrowd = 1`` with the category of the class they were labeled as;
* info: ``super_taxonomy``, ``taxonomy_hash`` (the whole set's), ``taxonomies`` (names), and
  ``super_taxonomy_hash`` + ``taxonomy_hashes`` (``merge_hashes``): what the file's content
  depends on, per taxonomy, so that ``load`` can name the taxonomy that changed.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np

from taxdet.core.files import atomic_open
from taxdet.datasets.coco_io import (
    IMAGE_BASE_KEYS,
    CocoFile,
    CocoFormatError,
    DatasetError,
    check_int,
    check_name,
    image_rows,
    read_coco,
    value_column,
    xywh_to_xyxy,
    xyxy_to_xywh,
)
from taxdet.datasets.merge_hashes import check_taxonomies, merge_hashes
from taxdet.datasets.sample import Sample
from taxdet.supertax import TaxonomySet

IMAGE_KEYS = ("taxonomy", "missing_classes", "content_hash", "source_image_id", "source_file")
OWNED_IMAGE_KEYS = IMAGE_BASE_KEYS + IMAGE_KEYS  # image fields the merge writes itself
ANNOTATION_KEYS = ("box_weight", "source_ann_id")


@dataclass
class SampleColumns:
    """Many samples in column form: N images, P boxes, R ignore regions.

    ``box_image`` [P] / ``ignore_image`` [R] are image rows (0..N-1); within an
    image, boxes keep their order in these arrays.
    """

    image_ids: np.ndarray            # [N] int64
    files: list[str]                 # [N]
    width: np.ndarray                # [N] int64
    height: np.ndarray               # [N] int64
    taxonomies: list[str]            # [N]
    source_image_ids: np.ndarray     # [N] int64
    content_hashes: list[str]        # [N]
    box_image: np.ndarray            # [P] int64
    boxes: np.ndarray                # [P, 4] float32 x1y1x2y2
    classes: np.ndarray              # [P] int64
    box_weights: np.ndarray          # [P] float32
    ann_ids: np.ndarray              # [P] int64
    ignore_image: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # [R]
    ignore: np.ndarray = field(default_factory=lambda: np.zeros((0, 4), np.float32))  # [R, 4]
    ignore_classes: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # [R]
    source_files: list[str] | None = None  # [N] the customer's annotation file of each image
    extra: list[dict] | None = None        # [N] other image fields, kept as read


def group_rows(rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """(order, offsets): ``order`` sorts ``rows`` stably; image i owns
    ``order[offsets[i]:offsets[i + 1]]``."""
    order = np.argsort(rows, kind="stable")
    offsets = np.zeros(n + 1, np.int64)
    np.cumsum(np.bincount(rows, minlength=n), out=offsets[1:])
    return order, offsets


def build_samples(cols: SampleColumns, taxset: TaxonomySet) -> list[Sample]:
    """One ``Sample`` per image. Per-sample arrays are views into sorted copies of the columns;
    samples of one taxonomy share one read-only ``label_mask``."""
    n = len(cols.files)
    order, off = group_rows(cols.box_image, n)
    boxes, classes = cols.boxes[order], cols.classes[order]
    weights, ann_ids = cols.box_weights[order], cols.ann_ids[order]
    iorder, ioff = group_rows(cols.ignore_image, n)
    ignore, ignore_classes = cols.ignore[iorder], cols.ignore_classes[iorder]
    masks = {}
    for name in set(cols.taxonomies):
        masks[name] = taxset.label_mask(name).copy()
        masks[name].flags.writeable = False
    out = []
    source_files, extra = cols.source_files or [""] * n, cols.extra or [{}] * n
    for i, (image_id, file, w, h, tax, src, digest) in enumerate(zip(
            cols.image_ids.tolist(), cols.files, cols.width.tolist(), cols.height.tolist(),
            cols.taxonomies, cols.source_image_ids.tolist(), cols.content_hashes)):
        a, b, c, d = off[i], off[i + 1], ioff[i], ioff[i + 1]
        out.append(Sample(image_id, file, w, h, tax, masks[tax], boxes[a:b], classes[a:b],
                          weights[a:b], ignore[c:d], src, ann_ids[a:b], digest,
                          ignore_classes[c:d], source_files[i], extra[i]))
    return out


class SuperDataset:
    """Samples of every taxonomy, in super-taxonomy terms, with the ``TaxonomySet`` they use."""

    def __init__(self, samples: list[Sample], taxset: TaxonomySet):
        self.samples = samples
        self.taxset = taxset
        self._by_id = {s.image_id: i for i, s in enumerate(samples)}
        if len(self._by_id) != len(samples):
            raise DatasetError("SuperDataset: sample image ids must be unique")

    def __len__(self) -> int:
        return len(self.samples)

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __getitem__(self, index: int) -> Sample:
        return self.samples[index]

    def by_id(self, image_id: int) -> Sample:
        return self.samples[self._by_id[image_id]]

    def subset(self, ids: Iterable[int]) -> SuperDataset:
        """The samples with these image ids, in the given order (``KeyError`` for unknown ids)."""
        return SuperDataset([self.by_id(int(i)) for i in ids], self.taxset)

    def categories(self) -> list[dict]:
        sup = self.taxset.super
        return [{"id": j + 1, "name": name, "supercategory": sup.parent_name(j)}
                for j, name in enumerate(sup.names)]

    def to_coco(self, relative_to: str | Path | None = None) -> dict:
        """The super-dataset as a COCO dict (format in ``docs/datasets.md``); ``file_name``
        relative to ``relative_to`` (a folder) if given, else the absolute path."""
        return {"info": {"description": f"super-dataset over {self.taxset.super.name!r}",
                         "super_taxonomy": self.taxset.super.name,
                         "taxonomy_hash": self.taxset.hash,
                         "taxonomies": list(self.taxset.index), **merge_hashes(self.taxset)},
                "images": [self._image_record(s, relative_to) for s in self.samples],
                "annotations": _annotation_records(self.samples),
                "categories": self.categories()}

    def _missing_classes(self, taxonomy: str) -> list[str]:
        """``taxset.missing_classes(taxonomy)``, computed once per taxonomy (a fresh list)."""
        cache = self.__dict__.setdefault("_missing_cache", {})
        if taxonomy not in cache:
            cache[taxonomy] = self.taxset.missing_classes(taxonomy)
        return list(cache[taxonomy])

    def _image_record(self, s: Sample, relative_to: str | Path | None) -> dict:
        file = s.file if relative_to is None else os.path.relpath(s.file, relative_to)
        record = {"id": s.image_id, "file_name": str(file).replace(os.sep, "/"), "width": s.width,
                  "height": s.height, "taxonomy": s.taxonomy,
                  "missing_classes": self._missing_classes(s.taxonomy),
                  "content_hash": s.content_hash, "source_image_id": s.source_image_id,
                  "source_file": s.source_file}
        record.update((k, v) for k, v in s.extra.items() if k not in record)
        return record

    def write(self, path: str | Path) -> None:
        """Write ``super.json`` (image paths relative to its folder, so data and file can move
        together)."""
        path = Path(path)
        with atomic_open(path) as f:
            json.dump(self.to_coco(relative_to=path.parent.resolve()), f)

    @classmethod
    def load(cls, path: str | Path, taxset: TaxonomySet) -> SuperDataset:
        """Read a ``super.json`` written by ``write``; it must have been merged with ``taxset``
        (``TaxonomyMismatchError`` naming each taxonomy that differs) and match its classes and
        label masks (``DatasetError`` otherwise). Images are not opened."""
        coco = read_coco(path, IMAGE_KEYS, ANNOTATION_KEYS, other_image_fields=True)
        _check_categories(coco, taxset)
        check_taxonomies(coco.info, taxset, path)
        cols = _columns_from_coco(coco, taxset, Path(path).resolve().parent)
        return cls(build_samples(cols, taxset), taxset)


def _annotation_records(samples: list[Sample]) -> list[dict]:
    """Boxes (iscrowd 0) then ignore regions (iscrowd 1) of each image, ids 1..; xywh floats."""
    out: list[dict] = []
    for s in samples:
        for box, c, w, a in zip(xyxy_to_xywh(s.boxes).tolist(), s.classes.tolist(),
                                s.box_weights.tolist(), s.source_ann_ids.tolist()):
            out.append({"id": len(out) + 1, "image_id": s.image_id, "category_id": c + 1,
                        "bbox": box, "area": box[2] * box[3], "iscrowd": 0,
                        "box_weight": w, "source_ann_id": a})
        for box, c in zip(xyxy_to_xywh(s.ignore).tolist(), s.ignore_classes.tolist()):
            out.append({"id": len(out) + 1, "image_id": s.image_id, "category_id": c + 1,
                        "bbox": box, "area": box[2] * box[3], "iscrowd": 1})
    return out


def _check_categories(coco: CocoFile, taxset: TaxonomySet) -> None:
    expected = {j + 1: name for j, name in enumerate(taxset.names)}
    if coco.categories != expected:
        got = ", ".join(f"{i} {n}" for i, n in sorted(coco.categories.items()))
        want = ", ".join(f"{i} {n}" for i, n in expected.items())
        raise CocoFormatError(f"{coco.path}: categories do not match super-taxonomy "
                              f"{taxset.super.name!r} (expected id = column + 1: {want}; "
                              f"got {got})")


def _image_taxonomies(coco: CocoFile, taxset: TaxonomySet) -> list[str]:
    """Each image's taxonomy, checked against the set and its ``missing_classes``
    (and ``content_hash`` checked to be a string)."""
    extra, ids = coco.images.extra, coco.images.ids
    expected = {name: taxset.missing_classes(name) for name in taxset.index}
    for i, (tax, missing, digest) in enumerate(zip(extra["taxonomy"], extra["missing_classes"],
                                                   extra["content_hash"])):
        if type(digest) is str and type(tax) is str and expected.get(tax) == missing:
            continue  # the usual case, checked fast
        where = f"{coco.path}: image id {ids[i]}"
        if not isinstance(digest, str):
            raise CocoFormatError(f"{where}: content_hash must be a string, got {digest!r}")
        if check_name(tax) or tax not in taxset.index:
            raise CocoFormatError(f"{where}: taxonomy {tax!r} is not in the taxonomy set "
                                  f"(known: {', '.join(taxset.index)})")
        if missing != taxset.missing_classes(tax):
            raise CocoFormatError(f"{where}: missing_classes {missing!r} differ from taxonomy "
                                  f"{tax!r} in the taxonomy set ({taxset.missing_classes(tax)}); "
                                  "the file was written with other taxonomies: merge again")
    return extra["taxonomy"]


def _columns_from_coco(coco: CocoFile, taxset: TaxonomySet, folder: Path) -> SampleColumns:
    img, ann, base = coco.images, coco.annotations, str(folder)
    rows, found = image_rows(img.ids, ann.image_ids)
    bad = np.flatnonzero(~found)
    if len(bad):
        raise CocoFormatError(f"{coco.path}: annotation id {ann.ids[bad[0]]}: image_id "
                              f"{ann.image_ids[bad[0]]} is not in the file's images")
    box, crowd = ~ann.iscrowd, ann.iscrowd
    xyxy = xywh_to_xyxy(ann.bbox).astype(np.float32)
    box_ids = ann.ids[box]
    weights = value_column(coco.path, "annotations", box_ids,
                           _box_values(ann.extra["box_weight"], box), "box_weight",
                           _check_weight, "if")
    if (weights <= 0).any():
        i = int(np.flatnonzero(weights <= 0)[0])
        raise CocoFormatError(f"{coco.path}: annotation id {box_ids[i]}: box_weight "
                              f"{_check_weight(weights[i].item())}")
    src_ann = value_column(coco.path, "annotations", box_ids,
                           _box_values(ann.extra["source_ann_id"], box),
                           "source_ann_id", check_int, "i")
    return SampleColumns(
        img.ids.astype(np.int64),
        [os.path.normpath(os.path.join(base, f)) for f in img.file_names],
        img.width, img.height, _image_taxonomies(coco, taxset),
        value_column(coco.path, "images", img.ids, img.extra["source_image_id"], "source_image_id",
                     check_int, "i"), img.extra["content_hash"],
        rows[box], xyxy[box], ann.category_ids[box] - 1, weights.astype(np.float32),
        src_ann.astype(np.int64), rows[crowd], xyxy[crowd], ann.category_ids[crowd] - 1,
        _source_files(coco), img.other)


def _box_values(values: list, box: np.ndarray) -> list:
    """The ``values`` [M] of the annotations that are boxes (``box`` [M] bool)."""
    return values if box.all() else [v for v, b in zip(values, box.tolist()) if b]


def _source_files(coco: CocoFile) -> list[str]:
    """Each image's ``source_file`` ("" where absent: files written before it existed)."""
    files = coco.images.extra["source_file"]
    for image_id, f in zip(coco.images.ids.tolist(), files):
        if f is not None and not isinstance(f, str):
            raise CocoFormatError(f"{coco.path}: image id {image_id}: source_file must be a "
                                  f"string, got {f!r:.80}")
    return [f or "" for f in files]


def _check_weight(v: object) -> str | None:
    ok = isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 and v < float("inf")
    return None if ok else f"must be a positive finite number, got {v!r}"
