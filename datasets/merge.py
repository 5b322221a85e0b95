"""Merge customers' COCO datasets into one super-dataset with per-sample label masks.

For every taxonomy of a ``TaxonomySet`` and every ``data`` entry of it, the COCO
file is read and validated (``taxdet.datasets.coco_io``), its categories are matched BY
NAME to the taxonomy's labels, and each annotation gets exactly one outcome:

* kept as a box (``classes`` = the label's super column, ``box_weights`` = the
  label's ``box_weight``), possibly clipped to the image;
* kept as an ignore region (``iscrowd = 1``);
* dropped, for the first reason that applies, in this order: image id not in the
  file, category not in the taxonomy (only with ``allow_unmapped``; an error
  otherwise), label ``maps_to: null``, non-positive width/height, box wholly
  outside the image.

Every outcome is counted in the ``MergeReport`` (read = kept + dropped, asserted).
Work is vectorised per file: one numpy array per COCO field, annotations grouped
by image with a stable argsort.

Duplicate images (same bytes, found with ``check_images``) are kept as separate
samples and reported (or, with ``duplicates="error"``, refused); see the README
for why they are not merged into one sample.
"""

from __future__ import annotations

import difflib
import os
from dataclasses import dataclass

import numpy as np

from taxdet.core.errors import ConfigError
from taxdet.datasets.coco_io import CocoFile, DatasetError, image_rows, read_coco, xywh_to_xyxy
from taxdet.datasets.images import ImageRef, check_images
from taxdet.datasets.merge_report import (
    CHANGED_CLIPPED,
    CHANGED_CROWD,
    CHANGED_DUPLICATE,
    CHANGED_OWN_FIELD,
    DROP_MISSING_IMAGE,
    DROP_NONPOSITIVE,
    DROP_NULL,
    DROP_OUTSIDE,
    DROP_UNMAPPED,
    MAX_EXAMPLES,
    Counts,
    DuplicateGroup,
    FileReport,
    MergeReport,
    tally,
)
from taxdet.datasets.superset import OWNED_IMAGE_KEYS, SampleColumns, SuperDataset, build_samples
from taxdet.supertax import DataSource, Taxonomy, TaxonomySet

DUPLICATE_POLICIES = ("report", "error")
NAME_HINT_CUTOFF = 0.75  # similarity (difflib ratio, case-insensitive) for "did you mean"

# annotation outcome codes; category status uses KEPT / UNMAPPED / NULL
KEPT, IGNORED, MISSING_IMAGE, UNMAPPED, NULL, NONPOSITIVE, OUTSIDE = range(7)
DROPS = {MISSING_IMAGE: DROP_MISSING_IMAGE, UNMAPPED: DROP_UNMAPPED, NULL: DROP_NULL,
         NONPOSITIVE: DROP_NONPOSITIVE, OUTSIDE: DROP_OUTSIDE}


class UnmappedCategoryError(DatasetError):
    """A COCO category name that is not a label of the file's taxonomy."""


class DuplicateImageError(DatasetError):
    """The same image bytes appear more than once (with ``duplicates="error"``)."""


@dataclass
class MergeConfig:
    """How strict the merge is.

    ``allow_unmapped``: drop and count annotations of categories the taxonomy does
    not name (default: error). ``check_images``: open, hash and fully decode every
    image (needed for content hashes and duplicate detection). ``duplicates``:
    ``"report"`` (keep all, list them) or ``"error"``. ``workers``: image-check threads.
    """

    allow_unmapped: bool = False
    check_images: bool = True
    duplicates: str = "report"
    workers: int = 4


@dataclass
class _Part:
    """One annotation file of one taxonomy after mapping and filtering."""

    coco: CocoFile
    columns: SampleColumns
    report: FileReport


def merge(taxset: TaxonomySet, cfg: MergeConfig | None = None) -> tuple[SuperDataset, MergeReport]:
    """Read every taxonomy's data and build the super-dataset (image ids 1..N in taxonomy,
    file, image order) and its report. Raises a ``DatasetError`` subclass on bad input."""
    cfg = cfg or MergeConfig()
    if cfg.duplicates not in DUPLICATE_POLICIES:
        raise ConfigError(f"duplicates must be one of {DUPLICATE_POLICIES}, got {cfg.duplicates!r}")
    parts, next_id = [], 1
    for tax in taxset.taxonomies:
        for src in tax.data:
            parts.append(_read_part(taxset, tax, src, cfg, next_id))
            next_id += len(parts[-1].columns.files)
    if not parts:
        raise DatasetError("no taxonomy has a data entry: nothing to merge "
                           f"(taxonomies: {', '.join(taxset.index) or 'none'})")
    if cfg.check_images:
        _check_and_hash(parts, cfg.workers)
    report = MergeReport([p.report for p in parts], duplicates_policy=cfg.duplicates,
                         classes=list(taxset.names))
    report.duplicates = _duplicates(parts)
    _apply_duplicate_policy(report, parts, cfg.duplicates)
    report.check()
    samples = [s for p in parts for s in build_samples(p.columns, taxset)]
    return SuperDataset(samples, taxset), report


def close_name(name: str, choices: list[str]) -> str | None:
    """The choice most like ``name`` (case-insensitive; ``Human`` for ``human``, not
    ``Vehicle`` for ``Bicycle``), or None."""
    lower = {c.lower(): c for c in reversed(choices)}
    match = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=NAME_HINT_CUTOFF)
    return lower[match[0]] if match else None


def _category_table(coco: CocoFile, tax: Taxonomy, taxset: TaxonomySet, allow_unmapped: bool
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Sorted category ids [C] and, per category, status (KEPT / NULL / UNMAPPED) [C],
    super column [C] (-1 if none) and box weight [C]."""
    ids = np.array(sorted(coco.categories), np.int64)
    status = np.full(len(ids), KEPT, np.int8)
    col, weight = np.full(len(ids), -1, np.int64), np.zeros(len(ids), np.float32)
    unmapped, names = [], [lab.name for lab in tax.labels]
    for k, cid in enumerate(ids.tolist()):
        label = tax.label(coco.categories[cid])
        if label is None:
            status[k] = UNMAPPED
            hint = close_name(coco.categories[cid], names)
            unmapped.append(f"category id {cid} {coco.categories[cid]!r}"
                            + (f" (did you mean {hint!r}?)" if hint else ""))
        elif label.maps_to is None:
            status[k] = NULL
        else:
            col[k], weight[k] = taxset.super.column[label.maps_to], label.box_weight
    if unmapped and not allow_unmapped:
        labels = ", ".join(lab.name for lab in tax.labels)
        raise UnmappedCategoryError(
            f"{coco.path}: {'; '.join(unmapped)} {'is' if len(unmapped) == 1 else 'are'} not "
            f"a label of taxonomy {tax.name!r} "
            f"(its labels: {labels}). Add it to the taxonomy (maps_to: null to drop it) or "
            "pass --allow-unmapped (MergeConfig.allow_unmapped) to drop and count its annotations")
    return ids, status, col, weight


def _outcomes(coco: CocoFile, rows: np.ndarray, found: np.ndarray, status: np.ndarray
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Outcome code [M] int8, clipped boxes [M, 4] float32 x1y1x2y2, clipped flag [M] bool."""
    ann = coco.annotations
    x1, y1, x2, y2 = xywh_to_xyxy(ann.bbox).T
    bw, bh = ann.bbox[:, 2], ann.bbox[:, 3]
    width, height = coco.images.width[rows], coco.images.height[rows]
    cx1, cx2 = np.clip(x1, 0, width), np.clip(x2, 0, width)
    cy1, cy2 = np.clip(y1, 0, height), np.clip(y2, 0, height)
    clipped = (cx1 != x1) | (cx2 != x2) | (cy1 != y1) | (cy2 != y2)
    codes = np.select(
        [~found, status == UNMAPPED, status == NULL, (bw <= 0) | (bh <= 0),
         (cx2 <= cx1) | (cy2 <= cy1), ann.iscrowd],
        [MISSING_IMAGE, UNMAPPED, NULL, NONPOSITIVE, OUTSIDE, IGNORED], KEPT).astype(np.int8)
    return codes, np.stack([cx1, cy1, cx2, cy2], 1).astype(np.float32), clipped


def _read_part(taxset: TaxonomySet, tax: Taxonomy, src: DataSource, cfg: MergeConfig,
               first_id: int) -> _Part:
    coco = read_coco(src.annotations, other_image_fields=True)
    ann, img = coco.annotations, coco.images
    if len(ann.ids) and not len(img.ids):
        raise DatasetError(f"{coco.path}: 'images' is empty but the file has {len(ann.ids)} "
                           "annotation(s): every annotation needs its image")
    cat_ids, status, cat_col, cat_weight = _category_table(coco, tax, taxset, cfg.allow_unmapped)
    cat = np.searchsorted(cat_ids, ann.category_ids)  # read_coco checked every id is declared
    rows, found = image_rows(img.ids, ann.image_ids)
    codes, xyxy, clipped = _outcomes(coco, rows, found, status[cat])
    box, crowd = codes == KEPT, codes == IGNORED
    n = len(img.ids)
    columns = SampleColumns(
        np.arange(first_id, first_id + n, dtype=np.int64),
        image_paths(src.images, img.file_names),
        img.width, img.height, [tax.name] * n, img.ids, [""] * n,
        rows[box], xyxy[box], cat_col[cat[box]], cat_weight[cat[box]], ann.ids[box],
        rows[crowd], xyxy[crowd], cat_col[cat[crowd]], [coco.path] * n)
    columns.extra, img_counts = _image_fields(coco)
    ann_counts = tally(codes, DROPS, {CHANGED_CLIPPED: clipped, CHANGED_CROWD: crowd},
                       lambda i: [coco.path, int(ann.image_ids[i]), int(ann.ids[i])])
    report = FileReport(tax.name, coco.path, img_counts, ann_counts,
                        _class_boxes(taxset, tax, cat_col[cat[box]]),
                        _label_boxes(coco, cat_ids, cat, box))
    return _Part(coco, columns, report)


def _image_fields(coco: CocoFile) -> tuple[list[dict], Counts]:
    """The customer's other image fields to keep ([N] dicts: ``date_captured``, ...; a field
    named like one of the merge's own is not copied) and the image counts (such images
    flagged as changed)."""
    img, n = coco.images, len(coco.images.ids)
    kept = [{k: v for k, v in o.items() if k not in OWNED_IMAGE_KEYS} for o in img.other]
    clashes = [i for i, (o, k) in enumerate(zip(img.other, kept)) if len(o) != len(k)]
    counts = Counts(read=n, kept=n)
    counts.flag(CHANGED_OWN_FIELD, len(clashes),
                [[coco.path, int(img.ids[i]), None] for i in clashes[:MAX_EXAMPLES]])
    return kept, counts


def _class_boxes(taxset: TaxonomySet, tax: Taxonomy, columns: np.ndarray) -> dict[str, int]:
    """Kept boxes per super class, from each box's column [P]: every class the taxonomy
    labels (zeros included), in column order."""
    counts = np.bincount(columns, minlength=taxset.num_classes)
    labeled = taxset.label_mask(tax.name)
    return {name: int(c) for name, c, on in zip(taxset.names, counts.tolist(), labeled) if on or c}


def _label_boxes(coco: CocoFile, cat_ids: np.ndarray, cat: np.ndarray, box: np.ndarray
                 ) -> dict[str, dict[str, int]]:
    """Per category name of the file: annotations read and kept as boxes (``cat`` [M]: row
    of each annotation's category in ``cat_ids``; ``box`` [M] bool: kept as a box)."""
    read = np.bincount(cat, minlength=len(cat_ids)).tolist()
    kept = np.bincount(cat[box], minlength=len(cat_ids)).tolist()
    return {coco.categories[c]: {"read": r, "boxes": k}
            for c, r, k in zip(cat_ids.tolist(), read, kept)}


def image_paths(folder: str, names: list[str]) -> list[str]:
    """``normpath(join(folder, name))`` for every name; plain relative names (the usual case)
    skip ``normpath`` because it would not change them."""
    prefix = os.path.join(os.path.normpath(folder), "")
    return [prefix + n if _plain(n) else os.path.normpath(os.path.join(folder, n)) for n in names]


def _plain(name: str) -> bool:
    """True if ``normpath`` leaves ``folder/name`` unchanged (POSIX only)."""
    return os.sep == "/" and not (name.startswith(("/", ".")) or "/." in name or "//" in name
                                  or name.endswith("/"))


def _check_and_hash(parts: list[_Part], workers: int) -> None:
    """Check every image of every file at once (all missing files in one error) and store
    the content hashes in the parts' columns."""
    refs = [ImageRef(path, int(w), int(h), f"{p.coco.path}, image id {i}")
            for p in parts
            for path, w, h, i in zip(p.columns.files, p.coco.images.width.tolist(),
                                     p.coco.images.height.tolist(), p.coco.images.ids.tolist())]
    hashes = check_images(refs, workers)
    start = 0
    for p in parts:
        n = len(p.columns.files)
        p.columns.content_hashes = hashes[start:start + n]
        start += n


def _duplicates(parts: list[_Part]) -> list[DuplicateGroup]:
    """Groups of images with the same content hash (images without a hash are skipped)."""
    groups: dict[str, list[list]] = {}
    for p in parts:
        c = p.columns
        for digest, src, iid in zip(c.content_hashes, c.source_image_ids.tolist(),
                                    c.image_ids.tolist()):
            if digest:
                groups.setdefault(digest, []).append([p.report.taxonomy, p.coco.path, src, iid])
    return [DuplicateGroup(h, m) for h, m in groups.items() if len(m) > 1]


def _apply_duplicate_policy(report: MergeReport, parts: list[_Part], policy: str) -> None:
    """``report``: flag every member image in its file's counts; ``error``: raise."""
    if policy == "error" and report.duplicates:
        groups = "\n  ".join(g.describe() for g in report.duplicates)
        raise DuplicateImageError(f"{len(report.duplicates)} image(s) appear more than once "
                                  f"(same content hash):\n  {groups}")
    by_file = {(p.report.taxonomy, p.coco.path): p.report for p in parts}
    for group in report.duplicates:
        for tax, file, src, _ in group.members:
            by_file[tax, file].images.flag(CHANGED_DUPLICATE, 1, [[file, src, None]])
