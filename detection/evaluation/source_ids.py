"""Predictions in a customer's own image ids, scored on a super-dataset (``super.json``).

The merge renumbers images 1..N; each ``super.json`` image keeps where it came from:
``taxonomy``, ``source_file`` (the customer's annotation file) and ``source_image_id``.
``to_super_ids`` maps a results list made in one customer's ids onto the super ids
(``evaluate.py --source-ids OWNER``); ``unknown_ids_hint`` recognises such a list when it was
passed without the flag and says so in the error.
"""

from __future__ import annotations

from pathlib import Path

from taxdet.core.names import did_you_mean
from taxdet.detection.evaluation.inputs import EvalInputError

MAX_LISTED = 5


def _is_int(v: object) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def has_source_ids(images: list[dict]) -> bool:
    """The images carry ``source_image_id`` (a super-dataset written by the merge)."""
    return any(_is_int(img.get("source_image_id")) for img in images)


def _same_file(a: str, b: str) -> bool:
    return a == b or Path(a).resolve() == Path(b).resolve()


def owner_images(images: list[dict], owner: str, source: str) -> list[dict]:
    """The images of ``owner``: a taxonomy name, or a ``source_file`` (annotation file path)."""
    if not has_source_ids(images):
        raise EvalInputError(f"{source}: its images have no source_image_id: source ids need a "
                             "super-dataset written by merge_datasets.py (super.json)")
    mine = [img for img in images if img.get("taxonomy") == owner]
    if not mine:
        mine = [img for img in images if isinstance(img.get("source_file"), str)
                and _same_file(img["source_file"], owner)]
    if not mine:
        names = sorted({img["taxonomy"] for img in images if isinstance(img.get("taxonomy"), str)})
        raise EvalInputError(f"{source}: no image comes from {owner!r} (taxonomies: "
                             f"{', '.join(names) or 'none'}; or give a source_file)"
                             f"{did_you_mean(owner, names)}")
    return mine


def source_id_map(images: list[dict], owner: str, source: str) -> dict[int, int]:
    """``source_image_id`` -> super image id for ``owner``'s images; an owner whose files
    share source ids must be named by file."""
    out: dict[int, int] = {}
    for img in owner_images(images, owner, source):
        sid = img.get("source_image_id")
        if not _is_int(sid):
            raise EvalInputError(f"{source}: image id {img['id']}: source_image_id must be an "
                                 f"integer, got {sid!r:.40}")
        if sid in out:
            files = sorted({str(i.get("source_file")) for i in images
                            if i.get("taxonomy") == owner})
            raise EvalInputError(f"{source}: {owner!r} has several annotation files sharing "
                                 f"image id {sid} (super ids {out[sid]} and {img['id']}): name "
                                 f"one file instead ({', '.join(files)})")
        out[sid] = img["id"]
    return out


def to_super_ids(preds: list, images: list[dict], owner: str, source: str,
                 pred_source: str) -> list:
    """``preds`` (a COCO results list in ``owner``'s own image ids) with super image ids.

    Records that are not objects or lack an integer ``image_id`` are passed on unchanged
    (the evaluation's checks name them); an id that is not one of the owner's is an error.
    """
    if not isinstance(preds, list):
        return preds
    ids = source_id_map(images, owner, source)
    out = []
    for i, p in enumerate(preds):
        if isinstance(p, dict) and _is_int(p.get("image_id")):
            if p["image_id"] not in ids:
                raise EvalInputError(f"{pred_source}: prediction [{i}]: image_id "
                                     f"{p['image_id']} is not an image of {owner!r} in {source} "
                                     "(its source_image_id values)")
            p = {**p, "image_id": ids[p["image_id"]]}
        out.append(p)
    return out


def _by_taxonomy(images: list[dict]) -> tuple[dict[str, set[int]], dict[str, set[int]]]:
    """Taxonomy -> its images' source ids, and taxonomy -> their super ids."""
    source: dict[str, set[int]] = {}
    super_ids: dict[str, set[int]] = {}
    for img in images:
        if isinstance(img.get("taxonomy"), str) and _is_int(img.get("source_image_id")):
            source.setdefault(img["taxonomy"], set()).add(img["source_image_id"])
            super_ids.setdefault(img["taxonomy"], set()).add(img["id"])
    return source, super_ids


def _pass_flag(fits: list[str]) -> str:
    return f"pass --source-ids {fits[0]}" + (" (or another of them)" if len(fits) > 1 else "")


def unknown_ids_hint(pred_ids: set[int], images: list[dict]) -> str:
    """When predicted image ids are not the ground truth's: ``"; ... pass --source-ids X"``
    if they all are the own ids of one or more customers, else ``""``."""
    if not pred_ids or not has_source_ids(images):
        return ""
    fits = sorted(name for name, sids in _by_taxonomy(images)[0].items() if pred_ids <= sids)
    if not fits:
        return ""
    return (f"; they look like customer image ids (source_image_id) of {', '.join(fits)}: "
            + _pass_flag(fits))


def ambiguous_ids_warning(pred_ids: set[int], images: list[dict]) -> str | None:
    """Predicted image ids that are all one customer's own ids but, read as super ids, fall
    on other customers' images: probably made in customer ids (a warning), else None."""
    if not pred_ids or not has_source_ids(images):
        return None
    source, super_ids = _by_taxonomy(images)
    fits = sorted(t for t in source if pred_ids <= source[t] and not pred_ids <= super_ids[t])
    if not fits:
        return None
    return (f"the predictions' image ids are all own image ids (source_image_id) of "
            f"{', '.join(fits)} but, read as the ground truth's ids, fall on other customers' "
            f"images; if they are a customer's own ids, {_pass_flag(fits)}")


def super_ids_hint(pred_categories: set[int], gt_categories: set[int],
                   taxonomies_given: bool) -> str:
    """When predicted category ids are not the ground truth's and no taxonomies were given:
    a hint that they may be super-taxonomy ids (column + 1)."""
    if taxonomies_given or pred_categories <= gt_categories:
        return ""
    return ("; if the predictions use super-taxonomy category ids (column + 1, as the model "
            "writes them), pass --taxonomies so they are matched to the ground truth's names")
