"""``evaluate()``: ground truth + COCO results -> ``EvalResult`` in one of three views.

* plain: no taxonomies, standard COCO (equal to pycocotools' ``COCOeval``);
* federated: images leave classes unlabeled (``missing_classes`` or their ``taxonomy``), each
  class is scored only on the images labeling it (see ``federated``);
* customer: super-taxonomy predictions mapped to a customer's labels (see ``customer``).

Training calls this every validation: prepare the ground truth once with
``load_ground_truth`` and pass the ``GroundTruth`` to keep repeated calls fast; nothing is
printed.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import numpy as np

from taxdet.core.json_files import json_source
from taxdet.detection.evaluation import backends as eng
from taxdet.detection.evaluation.customer import customer_ground_truth, map_to_customer
from taxdet.detection.evaluation.federated import drop_unlabeled, images_labeling
from taxdet.detection.evaluation.groundtruth import (
    GroundTruth,
    names_are_super,
    plain_ground_truth,
    super_ground_truth,
)
from taxdet.detection.evaluation.inputs import EvalInputError, Predictions, check_predictions
from taxdet.detection.evaluation.results import EvalResult, TaxonomyResult, class_results
from taxdet.supertax import TaxonomySet


def load_ground_truth(gt: dict | str | Path, *, taxset: TaxonomySet | None = None,
                      customer: str | None = None, name: str | None = None) -> GroundTruth:
    """Validate and prepare a COCO ground truth (the input is never modified).

    Without ``taxset``: plain COCO. With it: super-taxonomy names (matched by name, boxes
    expanded to ancestors) unless ``customer`` is given or the names are a customer's labels.
    ``name``: how messages name the ground truth (default: its path, or ``<ground truth>``).
    """
    raw, source = json_source(gt, "ground truth", EvalInputError)
    source = name or source
    if taxset is None:
        if customer is not None:
            raise EvalInputError("--customer needs --taxonomies")
        return plain_ground_truth(raw, source)
    if customer is None and names_are_super(raw, taxset):
        return super_ground_truth(raw, taxset, source)
    return customer_ground_truth(raw, taxset, customer, source)


def evaluate(gt: dict | str | Path | GroundTruth, predictions: list | str | Path, *,
             taxset: TaxonomySet | None = None, customer: str | None = None,
             federated: bool | None = None, engine: str = "auto") -> EvalResult:
    """Score COCO-format ``predictions`` against ``gt``; see the module docstring for views.

    ``federated`` None: on when some image leaves a class unlabeled. ``engine``: ``auto``
    (faster-coco-eval when installed), ``faster`` or ``pycocotools``. Raises
    ``EvalInputError`` for bad input.
    """
    truth = gt if isinstance(gt, GroundTruth) else load_ground_truth(gt, taxset=taxset,
                                                                     customer=customer)
    name = eng.resolve_engine(engine)
    raw, source = json_source(predictions, "predictions", EvalInputError)
    preds = check_predictions(raw, truth.sizes, set(truth.prediction_ids), source)
    counts = {**truth.counts, "predictions": len(preds)}
    if truth.view == "customer":
        preds, counts["predictions_of_unmapped_classes"] = map_to_customer(preds, truth)
    fed = truth.view != "customer" and (truth.has_missing if federated is None else federated)
    if fed:
        preds, counts["predictions_on_unlabeled_images"] = drop_unlabeled(preds, truth)
    counts["predictions_scored"] = len(preds)
    mode = "customer" if truth.view == "customer" else "federated" if fed else "plain"
    coco_gt, coco_dt = _coco_pair(truth, preds, name, fed)
    arrays = eng.run(coco_gt, coco_dt, name, truth.image_ids.tolist(), truth.eval_ids)
    per_class = _classes(truth, arrays, preds, coco_gt.dataset, fed, None)
    result = EvalResult(mode, name, eng.summarize(arrays), per_class, counts=counts,
                        warnings=truth.warnings + preds.warnings, customer=truth.customer,
                        arrays=arrays)
    for tax, (img_ids, cat_ids) in truth.taxonomy_groups().items():
        sub = eng.run(coco_gt, coco_dt, name, img_ids, cat_ids)
        result.per_taxonomy.append(TaxonomyResult(tax, len(img_ids), eng.summarize(sub),
                                                  _classes(truth, sub, preds, coco_gt.dataset,
                                                           fed, img_ids)))
    return result


def _coco_pair(truth: GroundTruth, preds: Predictions, engine: str, federated: bool):
    """Engine COCO objects: the ground truth's (cached on ``truth``) and the detections'."""
    key = (engine, federated)
    if key not in truth.cache:
        dataset = truth.coco_dataset(federated)
        dataset["annotations"] = [dict(a) for a in dataset["annotations"]]  # engines add keys
        truth.cache[key] = eng.make_coco(dataset, engine)
    coco_gt = truth.cache[key]
    dets = eng.detection_dicts(preds)
    return coco_gt, eng.make_coco(eng.results_dataset(coco_gt.dataset, dets), engine)


def _classes(truth: GroundTruth, arrays: eng.CocoArrays, preds: Predictions, dataset: dict,
             federated: bool, image_ids: list[int] | None):
    """Per-class results with counts (gt boxes, images labeling, predictions) on ``image_ids``."""
    on = None if image_ids is None else set(image_ids)
    gts = Counter(a["category_id"] for a in dataset["annotations"]
                  if not a["iscrowd"] and (on is None or a["image_id"] in on))
    sel = np.ones(len(preds), dtype=bool) if on is None else np.isin(preds.image_ids, image_ids)
    dts = Counter(preds.category_ids[sel].tolist())
    n_images = len(truth.images) if on is None else len(on)
    labeling = images_labeling(truth, image_ids) if federated else {}
    counts = {c: (gts[c], labeling.get(c, n_images), dts[c]) for c in truth.category_ids}
    names = dict(zip(truth.category_ids, truth.names))
    unpredictable = set(truth.category_ids) - set(truth.eval_ids) if image_ids is None else set()
    return class_results(arrays, names, counts, unpredictable)
