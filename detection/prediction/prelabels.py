"""Pre-label files: detections as a full COCO file, and such a file read back for scoring.

``coco_prelabels`` writes what labeling tools (CVAT through datumaro's ``coco_instances``,
Label Studio's COCO import) take as it is: ``images``, the ``categories`` of the output
taxonomy (see ``customer_labels``) and the detections as ``annotations`` with a ``score``
(``segmentation`` [], ``area`` = w * h, ``iscrowd`` 0); ``info`` says where they come from and
which labels are not predicted.

``own_image_ids`` gives the images the ids of a customer's annotation file where it has them
(matched by ``file_name`` as ``match_file_names`` does), so pycocotools' ``loadRes`` takes the
pre-labels against that file as it is; other images get ids after its largest.

``results_from_coco`` turns such a file into COCO results against a ground-truth file:
images matched by ``file_name`` (the same relative path, else the one ground-truth path
ending with it, or that it ends with), categories by name.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path, PurePosixPath
from typing import Callable

from taxdet.datasets.coco_io import (
    CocoFormatError,
    check_bbox,
    check_number,
    coco_sections,
    column,
    unique_ids,
)
from taxdet.detection.prediction.customer_labels import LabelSpace

MAX_LISTED = 5


def coco_prelabels(images: list[dict], results: list[dict], space: LabelSpace,
                   info: dict | None = None) -> dict:
    """A COCO file of ``images`` and ``results`` (COCO results already in ``space``'s ids)."""
    anns = []
    for r in results:
        x, y, w, h = r["bbox"]
        anns.append({"id": len(anns) + 1, "image_id": r["image_id"],
                     "category_id": r["category_id"], "bbox": [x, y, w, h],
                     "segmentation": [], "area": round(w * h, 2), "iscrowd": 0,
                     "score": r["score"]})
    head = {"description": f"pre-labels in {space.taxonomy!r}", "taxonomy": space.taxonomy,
            "not_predicted": space.not_predicted}
    if space.ids_from:
        head["category_ids_from"] = space.ids_from
    return {"info": {**head, **(info or {})}, "images": images, "annotations": anns,
            "categories": space.categories()}


def is_scored_coco(data) -> bool:
    """A COCO file (a dict with ``annotations``) rather than a COCO results list."""
    return isinstance(data, dict) and "annotations" in data


def _parts(name) -> tuple[str, ...]:
    return PurePosixPath(str(name).replace("\\", "/")).parts


def match_file_names(pred_images: list[dict], gt_images: list[dict],
                     source: str) -> tuple[dict[int, int], list[str]]:
    """Predicted image id -> ground-truth image id, by ``file_name``; and the predicted file
    names that match no ground-truth image. Two ground-truth images fitting: an error."""
    by_name = defaultdict(list)
    for g in gt_images:
        by_name[_parts(g.get("file_name", ""))[-1:]].append(g)
    mapping, unmatched = {}, []
    for p in pred_images:
        mine = _parts(p.get("file_name", ""))
        cands = by_name.get(mine[-1:], [])
        exact = [g for g in cands if _parts(g["file_name"]) == mine]
        fits = exact or [g for g in cands if _ends_with(_parts(g["file_name"]), mine)
                         or _ends_with(mine, _parts(g["file_name"]))]
        if len(fits) > 1:
            raise CocoFormatError(f"{source}: image id {p['id']} ({p.get('file_name')}) fits "
                                  f"several ground-truth images: "
                                  f"{[g['file_name'] for g in fits[:MAX_LISTED]]}")
        if fits:
            mapping[p["id"]] = fits[0]["id"]
        else:
            unmatched.append(str(p.get("file_name")))
    return mapping, unmatched


def own_image_ids(images: list[dict], coco: str | Path) -> tuple[dict[int, int], str]:
    """Image id -> the id of the same ``file_name`` in the COCO file ``coco`` (exact path,
    else its unique path ending), other images numbered after its largest id (file order);
    and a note saying how many matched. A name several of its images fit, or an image of it
    already taken, is not guessed: that image gets a new id."""
    from taxdet.core.json_files import json_source
    raw, source = json_source(coco, "images", CocoFormatError)
    theirs = coco_sections(source, raw)[0]
    matched: dict[int, int] = {}
    for img in images:
        try:
            found = match_file_names([img], theirs, source)[0]
        except CocoFormatError:
            continue
        if found and found[img["id"]] not in matched.values():
            matched.update(found)
    mapping, next_id = dict(matched), max((int(g["id"]) for g in theirs), default=0) + 1
    for img in images:
        if img["id"] not in mapping:
            mapping[img["id"]], next_id = next_id, next_id + 1
    return mapping, f"{len(matched)} of {len(images)} images have their ids in {source}"


def renumber_images(images: list[dict], results: list[dict], mapping: dict[int, int]
                    ) -> tuple[list[dict], list[dict]]:
    """(image records, results) with image ids mapped by ``mapping``."""
    return ([{**img, "id": mapping[img["id"]]} for img in images],
            [{**r, "image_id": mapping[r["image_id"]]} for r in results])


def _ends_with(path: tuple[str, ...], tail: tuple[str, ...]) -> bool:
    return len(tail) <= len(path) and path[len(path) - len(tail):] == tail


def results_from_coco(data: dict, gt: dict, category_id: Callable[[str], int | None],
                      source: str) -> tuple[list[dict], list[str]]:
    """COCO results from a scored COCO file ``data`` against the ground truth ``gt``.

    ``category_id(name)``: the id the evaluation expects for a category name (None: not
    scored, dropped). Returns the results and warnings (detections on images not in the
    ground truth are dropped and counted). ``CocoFormatError`` for a file without scores,
    names the evaluation does not know, or no image in common.
    """
    images, anns, cats = coco_sections(source, data)
    unique_ids(source, "images", images)
    column(source, "annotations", anns, "score", check_number, "if")
    column(source, "annotations", anns, "bbox", check_bbox, "if", width=4)
    image_map, unmatched = match_file_names(images, coco_sections(source, gt)[0], source)
    if images and not image_map:
        raise CocoFormatError(f"{source}: no image file_name matches the ground truth's "
                              f"(e.g. {unmatched[:MAX_LISTED]})")
    names = {c["id"]: c["name"] for c in cats}
    ids = {cat: category_id(name) for cat, name in names.items()}
    out, off_gt = [], 0
    for a in anns:
        if a["category_id"] not in ids:
            raise CocoFormatError(f"{source}: annotation id {a.get('id')}: unknown category_id "
                                  f"{a['category_id']}")
        if a["image_id"] not in image_map:
            off_gt += 1
        elif ids[a["category_id"]] is not None:
            out.append({"image_id": image_map[a["image_id"]], "category_id": ids[a["category_id"]],
                        "bbox": a["bbox"], "score": a["score"]})
    warnings = []
    if unmatched:
        warnings.append(f"{source}: {len(unmatched)} images are not in the ground truth (e.g. "
                        f"{', '.join(unmatched[:MAX_LISTED])}); their {off_gt} detections "
                        "are not scored")
    return out, warnings
