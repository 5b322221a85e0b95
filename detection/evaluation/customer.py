"""The customer view: super-taxonomy predictions scored in a customer's own label names.

Each customer label ``L`` mapping to column ``j`` receives the detections of column ``j``
(category id ``j + 1``) with their score; a coarse label (``Vehicle`` -> ``vehicle``) thus
gets the ancestor column, which training fills from every descendant box. Labels mapping to
nothing (``maps_to: null``) cannot be predicted: they are reported as "not predicted" and
left out of the means.

A pre-label file of ``predict.py`` (``info``: its checkpoint, taxonomy and ``not_predicted``
labels) scored without ``--taxonomies`` takes its view from there (``prelabel_view``): the
checkpoint's taxonomies when the checkpoint is at hand (the customer view, as with
``--taxonomies``), else the plain view without the labels it names as not predicted
(``drop_not_predicted``), so a null label never counts in the mean.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from taxdet.core.names import did_you_mean
from taxdet.datasets.merge import close_name
from taxdet.detection.evaluation.groundtruth import (
    GroundTruth,
    add_labels,
    copy_annotations,
    copy_images,
)
from taxdet.detection.evaluation.inputs import EvalInputError, Predictions, check_ground_truth
from taxdet.supertax import TaxonomySet

log = logging.getLogger(__name__)


def infer_customer(names: list[str], taxset: TaxonomySet, source: str) -> str:
    """The one taxonomy whose label names include every ground-truth category name."""
    fits = [t.name for t in taxset.taxonomies if set(names) <= {lab.name for lab in t.labels}]
    if len(fits) == 1:
        return fits[0]
    known = "; ".join(f"{t.name}: {', '.join(lab.name for lab in t.labels)}"
                      for t in taxset.taxonomies)
    if not fits:
        raise EvalInputError(f"{source}: category names {names} are neither super-taxonomy "
                             f"classes ({', '.join(taxset.names)}) nor the labels of one "
                             f"taxonomy ({known}){_suggestions(names, taxset)}")
    raise EvalInputError(f"{source}: category names {names} fit several taxonomies "
                         f"({', '.join(fits)}); choose one with --customer")


def _suggestions(names: list[str], taxset: TaxonomySet) -> str:
    """``"; 'human': did you mean 'Human'?"`` for each name no taxonomy or class has."""
    known = list(dict.fromkeys([lab.name for t in taxset.taxonomies for lab in t.labels]
                               + list(taxset.names)))
    return _hints([n for n in names if n not in known], known)


def _hints(names: list[str], choices: list[str]) -> str:
    return "".join(f"; {n!r}: did you mean {h!r}?" for n in names
                   if (h := close_name(n, choices)))


def _column_labels(raw: dict, columns: dict[str, int | None]) -> dict[int, list[int]]:
    """Column -> ground-truth category ids of the labels that map to it."""
    out: dict[int, list[int]] = {}
    for c in sorted(raw["categories"], key=lambda c: c["id"]):
        j = columns[c["name"]]
        if j is not None:
            out.setdefault(j, []).append(c["id"])
    return out


def customer_ground_truth(raw: dict, taxset: TaxonomySet, customer: str | None,
                          source: str) -> GroundTruth:
    """A customer's COCO file in its own names; predictions will arrive in super columns."""
    warnings = check_ground_truth(raw, source)
    names = [c["name"] for c in raw["categories"]]
    customer = customer or infer_customer(names, taxset, source)
    if customer not in taxset.index:
        known = list(taxset.index)
        raise EvalInputError(f"unknown customer taxonomy {customer!r}; known: "
                             f"{', '.join(known)}{did_you_mean(customer, known)}")
    columns = taxset.label_columns(customer)
    unknown = [n for n in names if n not in columns]
    if unknown:
        raise EvalInputError(f"{source}: categories {unknown} are not labels of taxonomy "
                             f"{customer!r} ({', '.join(columns)}){_hints(unknown, list(columns))}")
    cats = sorted(raw["categories"], key=lambda c: c["id"])
    ids = [c["id"] for c in cats]
    anns, filled = copy_annotations(raw["annotations"], {i: i for i in ids})
    col_labels = _column_labels(raw, columns)
    gt = GroundTruth(source, "customer", copy_images(raw), anns, ids, [c["name"] for c in cats],
                     np.zeros(0), np.zeros(0),
                     prediction_ids=list(range(1, taxset.num_classes + 1)),
                     eval_ids=sorted(i for v in col_labels.values() for i in v), warnings=warnings,
                     counts={"gt_boxes": len(anns), "gt_area_filled": filled},
                     customer=customer, column_labels=col_labels)
    for j, cat_ids in col_labels.items():
        if len(cat_ids) > 1:
            shared = [n for i, n in zip(ids, gt.names) if i in cat_ids]
            gt.warnings.append(f"labels {shared} of {customer} all map to super class "
                               f"{taxset.names[j]!r}: each gets the same detections")
    return add_labels(gt, raw, None)


def map_to_customer(preds: Predictions, gt: GroundTruth) -> tuple[Predictions, int]:
    """Detections of super columns -> detections of the customer labels mapping to them.

    Returns the mapped detections (input order kept within each label) and how many input
    detections belong to columns no customer label maps to (not scored).
    """
    parts, used = [], np.zeros(len(preds), dtype=bool)
    for j, cat_ids in sorted(gt.column_labels.items()):
        sel = preds.category_ids == j + 1
        used |= sel
        for cat in cat_ids:
            part = preds.select(sel)
            part.category_ids = np.full(len(part), cat, dtype=np.int64)
            parts.append(part)
    if not parts:
        return preds.select(np.zeros(len(preds), dtype=bool)), len(preds)
    out = Predictions(*(np.concatenate([getattr(p, k) for p in parts])
                        for k in ("image_ids", "category_ids", "boxes", "scores")), preds.warnings)
    return out, int((~used).sum())


@dataclass
class PrelabelView:
    """How to score a ``predict.py`` pre-label file given without ``--taxonomies``: its
    checkpoint's ``taxset`` (None: not at hand) and the labels it says are not predicted."""

    taxset: TaxonomySet | None = None
    not_predicted: list[str] = field(default_factory=list)


def prelabel_view(data: object) -> PrelabelView:
    """The view a scored COCO file's ``info`` asks for (module docstring); empty for other
    predictions. A checkpoint that cannot be read is a warning, not an error."""
    info = data.get("info") if isinstance(data, dict) else None
    if not isinstance(info, dict):
        return PrelabelView()
    names = [n for n in info.get("not_predicted") or [] if isinstance(n, str)]
    ckpt = info.get("checkpoint")
    if isinstance(ckpt, str) and Path(ckpt).is_file():
        from taxdet.core.errors import InputError
        from taxdet.detection.engine import checkpoint
        from taxdet.detection.engine.model_loading import checkpoint_taxonomies
        try:
            taxset = checkpoint_taxonomies(checkpoint.load(ckpt, required=("taxonomies",)), ckpt)
        except InputError as exc:
            log.warning(f"the predictions' checkpoint cannot give their taxonomies ({exc})")
        else:
            return PrelabelView(taxset, names)
    return PrelabelView(None, names)


def drop_not_predicted(truth: GroundTruth, names: list[str]) -> list[str]:
    """Leave the categories named ``names`` out of ``truth``'s means (they are reported as not
    predicted); returns the names dropped."""
    gone = {c for c, n in zip(truth.category_ids, truth.names) if n in names}
    truth.eval_ids = [c for c in truth.eval_ids if c not in gone]
    return [n for c, n in zip(truth.category_ids, truth.names) if c in gone]
