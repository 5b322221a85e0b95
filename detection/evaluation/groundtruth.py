"""Ground truth prepared for evaluation: our own copies, classes resolved, labels per image.

Three kinds of ground truth become one ``GroundTruth``:

* plain COCO (no taxonomies): the file's own category ids and names;
* super-taxonomy names (with a ``TaxonomySet``): categories matched to super classes BY
  NAME, internal id = column + 1, boxes expanded to their ancestors where the image's
  taxonomy labels the ancestor;
* a customer's own names: built by ``customer.customer_ground_truth``.

``labeled`` [N, C] bool says which classes each image's taxonomy labels (from the image's
``missing_classes`` names, or its ``taxonomy`` looked up in the ``TaxonomySet``); federated
evaluation scores a class only on the images that label it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from taxdet.detection.evaluation.inputs import EvalInputError, check_ground_truth
from taxdet.supertax import TaxonomySet


@dataclass
class GroundTruth:
    """A validated COCO ground truth in evaluation form. N images, C categories, G boxes.

    ``images``/``annotations`` are fresh dicts (annotation ids renumbered 1..G, input order
    kept); ``category_ids`` [C] and ``names`` [C] in class order; ``labeled`` [N, C] bool in
    ``image_ids`` order; ``ann_labeled`` [G] bool: the box's class is labeled on its image.
    ``prediction_ids`` are the category ids predictions may use; ``eval_ids`` those that
    enter the means (a customer's labels the model cannot predict are left out).
    """

    source: str
    view: str                      # "plain" | "super" | "customer"
    images: list[dict]
    annotations: list[dict]
    category_ids: list[int]
    names: list[str]
    labeled: np.ndarray
    ann_labeled: np.ndarray
    image_taxonomy: dict[int, str] = field(default_factory=dict)
    prediction_ids: list[int] = field(default_factory=list)
    eval_ids: list[int] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    customer: str | None = None
    column_labels: dict[int, list[int]] = field(default_factory=dict)  # customer: col -> cat ids
    cache: dict = field(default_factory=dict, repr=False)  # engine COCO objects

    @property
    def image_ids(self) -> np.ndarray:
        """[N] int64 image ids, in ``images`` order."""
        return np.array([img["id"] for img in self.images], dtype=np.int64)

    @property
    def sizes(self) -> dict[int, tuple[float, float]]:
        return {img["id"]: (img["width"], img["height"]) for img in self.images}

    @property
    def has_missing(self) -> bool:
        """Some image leaves some class unlabeled: federated evaluation applies."""
        return not self.labeled.all()

    def column(self, category_id: int) -> int:
        return self.category_ids.index(category_id)

    def coco_dataset(self, federated: bool) -> dict:
        """Internal COCO dict; federated drops boxes of classes their image leaves unlabeled."""
        anns = self.annotations
        if federated and not self.ann_labeled.all():
            anns = [a for a, keep in zip(anns, self.ann_labeled) if keep]
        cats = [{"id": c, "name": n} for c, n in zip(self.category_ids, self.names)]
        return {"images": self.images, "annotations": anns, "categories": cats}

    def taxonomy_groups(self) -> dict[str, tuple[list[int], list[int]]]:
        """Taxonomy name -> (its image ids, category ids its images label), sorted by name."""
        out: dict[str, tuple[list[int], list[int]]] = {}
        rows = {img["id"]: r for r, img in enumerate(self.images)}
        for name in sorted(set(self.image_taxonomy.values())):
            ids = [i for i, t in self.image_taxonomy.items() if t == name]
            cols = self.labeled[[rows[i] for i in ids]].any(axis=0)
            out[name] = (sorted(ids), [c for c, on in zip(self.category_ids, cols)
                                       if on and c in self.eval_ids])
        return out


def copy_images(gt: dict) -> list[dict]:
    return [{"id": img["id"], "width": img["width"], "height": img["height"]}
            for img in gt["images"]]


def copy_annotations(anns: list[dict], category_of: dict[int, int]) -> tuple[list[dict], int]:
    """Fresh annotation dicts (ids 1..G, categories mapped); also how many lacked an area."""
    out, filled = [], 0
    for i, a in enumerate(anns):
        box = [float(v) for v in a["bbox"]]
        area = a.get("area")
        if area is None:
            area, filled = box[2] * box[3], filled + 1
        out.append({"id": i + 1, "image_id": a["image_id"],
                    "category_id": category_of[a["category_id"]], "bbox": box,
                    "area": float(area), "iscrowd": int(a.get("iscrowd", 0) or 0)})
    return out, filled


def image_labels(img: dict, names: list[str], taxset: TaxonomySet | None,
                 source: str) -> np.ndarray:
    """[C] bool: classes (in ``names`` order) the image's taxonomy labels."""
    if img.get("missing_classes") is not None:
        missing = img["missing_classes"]
        if not (isinstance(missing, list) and all(isinstance(m, str) for m in missing)):
            raise EvalInputError(f"{source}: image id {img['id']}: missing_classes must be a "
                                 f"list of class names, got {missing!r:.120}")
        unknown = [m for m in missing if m not in names]
        if unknown:
            raise EvalInputError(f"{source}: image id {img['id']}: missing_classes {unknown} are "
                                 f"not categories of the ground truth ({', '.join(names)})")
        return ~np.isin(names, missing)
    tax = img.get("taxonomy")
    if tax is not None and taxset is not None:
        if not isinstance(tax, str) or tax not in taxset.index:
            raise EvalInputError(f"{source}: image id {img['id']}: unknown taxonomy {tax!r}; "
                                 f"known: {', '.join(taxset.index)}")
        return taxset.label_mask(tax).copy()
    return np.ones(len(names), dtype=bool)


def add_labels(gt: GroundTruth, raw: dict, taxset: TaxonomySet | None) -> GroundTruth:
    """Fill ``labeled``, ``ann_labeled``, per-image taxonomies and counts."""
    rows = [image_labels(img, gt.names, taxset, gt.source) for img in raw["images"]]
    gt.labeled = np.stack(rows) if rows else np.ones((0, len(gt.names)), dtype=bool)
    gt.image_taxonomy = {img["id"]: img["taxonomy"] for img in raw["images"]
                         if isinstance(img.get("taxonomy"), str)}
    rows = {img["id"]: r for r, img in enumerate(gt.images)}
    col = {c: j for j, c in enumerate(gt.category_ids)}
    gt.ann_labeled = np.array([gt.labeled[rows[a["image_id"]], col[a["category_id"]]]
                               for a in gt.annotations], dtype=bool)
    unlabeled = int((~gt.ann_labeled).sum())
    gt.counts.update(images=len(gt.images), gt_boxes_of_unlabeled_classes=unlabeled)
    if unlabeled:
        gt.warnings.append(f"{gt.source}: {unlabeled} ground-truth boxes belong to classes their "
                           "image marks missing; federated evaluation drops them")
    return gt


def plain_ground_truth(raw: dict, source: str) -> GroundTruth:
    """A COCO file evaluated in its own category ids and names (standard COCO)."""
    warnings = check_ground_truth(raw, source)
    cats = sorted(raw["categories"], key=lambda c: c["id"])
    ids = [c["id"] for c in cats]
    anns, filled = copy_annotations(raw["annotations"], {i: i for i in ids})
    gt = GroundTruth(source, "plain", copy_images(raw), anns, ids, [c["name"] for c in cats],
                     np.zeros(0), np.zeros(0), prediction_ids=ids, eval_ids=ids, warnings=warnings,
                     counts={"gt_boxes": len(anns), "gt_area_filled": filled})
    return add_labels(gt, raw, None)


def expand_to_ancestors(gt: GroundTruth, ancestors: np.ndarray) -> int:
    """Append a copy of each box for every strict ancestor its image labels; return how many.

    ``ancestors`` [K, K] bool (``ancestors[j, i]``: i is j or an ancestor of j); category id
    of column j is j + 1.
    """
    rows = {img["id"]: r for r, img in enumerate(gt.images)}
    strict = ancestors & ~np.eye(len(ancestors), dtype=bool)
    extra = []
    for a in gt.annotations:
        labeled = gt.labeled[rows[a["image_id"]]]
        for i in np.flatnonzero(strict[a["category_id"] - 1] & labeled):
            extra.append({**a, "bbox": list(a["bbox"]), "id": len(gt.annotations) + len(extra) + 1,
                          "category_id": int(i) + 1})
    gt.annotations = gt.annotations + extra
    gt.ann_labeled = np.concatenate([gt.ann_labeled, np.ones(len(extra), dtype=bool)])
    return len(extra)


def super_ground_truth(raw: dict, taxset: TaxonomySet, source: str) -> GroundTruth:
    """A COCO file in super-taxonomy class names: internal category id = column + 1."""
    warnings = check_ground_truth(raw, source)
    unknown = [c["name"] for c in raw["categories"] if c["name"] not in taxset.names]
    if unknown:
        raise EvalInputError(f"{source}: categories {unknown} are not classes of super-taxonomy "
                             f"{taxset.super.name!r} ({', '.join(taxset.names)})")
    col = {c["id"]: taxset.names.index(c["name"]) + 1 for c in raw["categories"]}
    anns, filled = copy_annotations(raw["annotations"], col)
    ids = list(range(1, taxset.num_classes + 1))
    gt = GroundTruth(source, "super", copy_images(raw), anns, ids, list(taxset.names),
                     np.zeros(0), np.zeros(0), prediction_ids=ids, eval_ids=ids, warnings=warnings,
                     counts={"gt_boxes": len(anns), "gt_area_filled": filled})
    add_labels(gt, raw, taxset)
    gt.counts["gt_boxes_added_for_ancestors"] = expand_to_ancestors(gt, taxset.ancestors)
    return gt


def names_are_super(raw: dict, taxset: TaxonomySet) -> bool:
    """Every ground-truth category name is a super-taxonomy class name."""
    cats = raw.get("categories") if isinstance(raw, dict) else None
    return isinstance(cats, list) and all(isinstance(c, dict) and c.get("name") in taxset.names
                                          for c in cats)
