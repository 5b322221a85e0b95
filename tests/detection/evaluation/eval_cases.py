"""Evaluation test cases: tiny COCO ground truths, detections, and pycocotools as the
reference."""

import contextlib
import copy
import io

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl",
             "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")


def _image(spec):
    i, w, h, *extra = spec
    return {"id": i, "width": w, "height": h, **(extra[0] if extra else {})}


def coco_gt(images, categories, annotations):
    """A COCO dict from images (id, w, h[, extra fields]), categories (id, name) and
    annotations (image id, category id, box[, iscrowd])."""
    return {"images": [_image(s) for s in images],
            "categories": [{"id": c, "name": n} for c, n in categories],
            "annotations": [{"id": k + 1, "image_id": a[0], "category_id": a[1], "bbox": list(a[2]),
                             "area": a[2][2] * a[2][3], "iscrowd": a[3] if len(a) > 3 else 0}
                            for k, a in enumerate(annotations)]}


def det(image_id, category_id, box, score):
    return {"image_id": image_id, "category_id": category_id, "bbox": list(box), "score": score}


def stats_array(stats: dict) -> np.ndarray:
    return np.array([stats[k] for k in STAT_KEYS])


def reference_eval(gt, preds, img_ids=None, cat_ids=None) -> COCOeval:
    """pycocotools COCOeval (evaluate + accumulate + summarize) on deep copies."""
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = copy.deepcopy(gt)
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(copy.deepcopy(preds)), "bbox")
        if img_ids is not None:
            ev.params.imgIds = sorted(img_ids)
        if cat_ids is not None:
            ev.params.catIds = sorted(cat_ids)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def random_case(seed, n_images=25, n_classes=4, crowd=0.1, cat_ids=None):
    """Random GT (small/medium/large boxes, some crowd) and noisy detections (TP, FP, misses)."""
    rng = np.random.default_rng(seed)
    cat_ids = cat_ids or [3 * c + 2 for c in range(n_classes)]  # ids need not be 1..C
    images = [(i + 1, 640, 480) for i in range(n_images)]
    anns, preds = [], []
    for img, _, _ in images:
        for _ in range(rng.integers(0, 7)):
            side = rng.choice([rng.uniform(4, 30), rng.uniform(35, 90), rng.uniform(100, 300)])
            w, h = side * rng.uniform(0.6, 1.4, 2)
            x, y = rng.uniform(0, 640 - w), rng.uniform(0, 480 - h)
            c = int(rng.choice(cat_ids))
            anns.append((img, c, (x, y, w, h), int(rng.random() < crowd)))
            if rng.random() < 0.85:
                j = rng.normal(0, 0.12, 4) * [w, h, w, h]
                c_pred = c if rng.random() < 0.85 else int(rng.choice(cat_ids))
                preds.append(det(img, c_pred, (x + j[0], y + j[1], abs(w + j[2]) + 1,
                                               abs(h + j[3]) + 1), round(float(rng.random()), 2)))
        for _ in range(rng.integers(0, 4)):  # pure false positives; scores rounded: ties happen
            preds.append(det(img, int(rng.choice(cat_ids)), rng.uniform(0, 300, 4),
                             round(float(rng.random()), 2)))
    cats = [(c, f"class_{c}") for c in cat_ids]
    return coco_gt(images, cats, anns), preds
