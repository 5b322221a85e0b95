"""What an evaluation scores: the whole ground truth, or one side of a run's split; and the
predictions on it.

``ground_truth_scope`` reads and checks the ground truth once and, with a run's
``split.json``, keeps only the images of one side (``run_split``). ``scoped_predictions``
maps predictions made in a customer's own image ids (``source_ids``), checks them against
the WHOLE file (an error then carries a hint: pass ``--source-ids`` or ``--taxonomies``), and
drops, counting them, the predictions on images outside the selection.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from taxdet.core.json_files import json_source
from taxdet.detection.evaluation.inputs import EvalInputError, check_ground_truth, check_predictions
from taxdet.detection.evaluation.run_split import match_split, read_split
from taxdet.detection.evaluation.source_ids import (
    ambiguous_ids_warning,
    super_ids_hint,
    to_super_ids,
    unknown_ids_hint,
)


@dataclass
class Scope:
    """The ground truth to score (``gt``: a COCO dict of the selected images and their
    annotations) beside the whole file it came from (``full``; the same dict without a split).
    ``split``: what the split selection found (for the JSON report), None without one."""

    gt: dict
    source: str
    full: dict
    notes: list[str] = field(default_factory=list)      # printed: what was selected, dropped
    warnings: list[str] = field(default_factory=list)
    split: dict | None = None

    @property
    def all_images(self) -> list[dict]:
        return self.full["images"]

    @property
    def is_subset(self) -> bool:
        return self.gt is not self.full


def subset_coco(raw: dict, image_ids: list[int]) -> dict:
    """``raw`` with only these images (in the file's order) and their annotations."""
    keep = set(image_ids)
    return {**raw, "images": [img for img in raw["images"] if img["id"] in keep],
            "annotations": [a for a in raw["annotations"] if a["image_id"] in keep]}


def ground_truth_scope(gt: dict | str | Path, run: str | Path | None = None,
                       side: str | None = None) -> Scope:
    """Read ``gt``; with ``run`` (a run folder or its ``split.json``), check it and keep the
    images of ``side`` (train, val or all). ``EvalInputError`` when none is found. Without
    ``run``, ``load_ground_truth`` must check ``gt`` before ``scoped_predictions`` uses it."""
    raw, source = json_source(gt, "ground truth", EvalInputError)
    if run is None:  # checked when loaded for the evaluation (``load_ground_truth``)
        return Scope(raw, source, raw)
    check_ground_truth(raw, source)
    split = read_split(run)
    gt_path = gt if isinstance(gt, (str, Path)) else None
    match = match_split(raw["images"], gt_path, split, side or "val")
    if not match.image_ids:
        raise EvalInputError(f"{source}: none of the {match.wanted} {side} images of "
                             f"{split.path} is in the ground truth (matched by "
                             f"{match.matched_by}); is it the run's super.json, or a file "
                             "merged from the same images?")
    summary = {"file": split.path, "side": side or "val", "matched_by": match.matched_by,
               "wanted": match.wanted, "found": match.wanted - len(match.missing),
               "selected": len(match.image_ids)}
    return Scope(subset_coco(raw, match.image_ids), source, raw,
                 [match.describe(side or "val", split.path, source)], match.warnings, summary)


def _ids(preds: list, key: str) -> set[int]:
    return {p[key] for p in preds if isinstance(p, dict) and isinstance(p.get(key), int)}


def scoped_predictions(scope: Scope, preds: list, pred_source: str, category_ids: set[int], *,
                       source_ids: str | None = None, taxonomies_given: bool = True) -> list:
    """``preds`` (a COCO results list) checked against every image of the file and restricted
    to the selected ones; ``source_ids``: the taxonomy (or ``source_file``) whose own image
    ids the predictions use. ``category_ids``: the ids the evaluation accepts."""
    if source_ids is not None:
        preds = to_super_ids(preds, scope.all_images, source_ids, scope.source, pred_source)
    sizes = {img["id"]: (img["width"], img["height"]) for img in scope.all_images}
    try:
        check_predictions(preds, sizes, category_ids, pred_source)
    except EvalInputError as exc:
        unknown_images = _ids(preds, "image_id") - set(sizes)
        hint = (unknown_ids_hint(_ids(preds, "image_id"), scope.all_images)
                if unknown_images and source_ids is None else
                super_ids_hint(_ids(preds, "category_id"), category_ids, taxonomies_given))
        raise EvalInputError(f"{exc}{hint}") from None
    ambiguous = None if source_ids else ambiguous_ids_warning(_ids(preds, "image_id"),
                                                              scope.all_images)
    scope.warnings += [ambiguous] if ambiguous else []
    if not scope.is_subset:
        return preds
    keep = {img["id"] for img in scope.gt["images"]}
    out = [p for p in preds if p["image_id"] in keep]
    if len(out) < len(preds):
        scope.notes.append(f"{len(preds) - len(out)} of {len(preds)} predictions are on images "
                           "outside the selection: not scored")
    return out
