"""Benchmark: our end-to-end ``evaluate()`` vs pycocotools ``COCOeval`` on the same data.

2,000 images, 80 classes, 100 detections per image (deterministic, seed 0). pycocotools is
timed from the ground-truth dict and results list to the 12 numbers (index building,
``loadRes``, evaluate, accumulate, summarize); ours from the same inputs (validation,
indexing, evaluation, per-class tables). The 12 numbers must agree to 1e-9.

    .venv/bin/python benchmarks/bench_eval.py [--images 2000] [--classes 80] [--dets 100]
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import io
import time

import numpy as np

from taxdet.detection.evaluation import STAT_KEYS, evaluate


def generate(images: int, classes: int, dets: int, seed: int = 0) -> tuple[dict, list[dict]]:
    """A COCO ground truth (~7 boxes per image) and ``dets`` noisy detections per image."""
    rng = np.random.default_rng(seed)
    imgs = [{"id": i + 1, "width": 640, "height": 480} for i in range(images)]
    cats = [{"id": c + 1, "name": f"class_{c}"} for c in range(classes)]
    anns, preds = [], []
    for img in imgs:
        n = int(rng.integers(1, 14))
        wh = rng.uniform(8, 250, (n, 2))
        xy = rng.uniform(0, 1, (n, 2)) * (np.array([640, 480]) - wh)
        cls = rng.integers(1, classes + 1, n)
        for box, c in zip(np.hstack([xy, wh]).tolist(), cls.tolist()):
            anns.append({"id": len(anns) + 1, "image_id": img["id"], "category_id": c,
                         "bbox": box, "area": box[2] * box[3], "iscrowd": 0})
        src = rng.integers(0, n, dets)
        jitter = rng.normal(0, 0.08, (dets, 4)) * np.repeat(wh[src], 2, axis=1)
        boxes = np.hstack([xy[src], wh[src]]) + jitter
        boxes[:, 2:] = np.abs(boxes[:, 2:]) + 1
        cls_d = np.where(rng.random(dets) < 0.7, cls[src], rng.integers(1, classes + 1, dets))
        for box, c, s in zip(boxes.tolist(), cls_d.tolist(), rng.random(dets).tolist()):
            preds.append({"image_id": img["id"], "category_id": c, "bbox": box, "score": s})
    return {"images": imgs, "categories": cats, "annotations": anns}, preds


def pycocotools_stats(gt: dict, preds: list[dict]) -> np.ndarray:
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval
    with contextlib.redirect_stdout(io.StringIO()):
        coco = COCO()
        coco.dataset = gt
        coco.createIndex()
        ev = COCOeval(coco, coco.loadRes(preds), "bbox")
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev.stats


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--classes", type=int, default=80)
    ap.add_argument("--dets", type=int, default=100)
    args = ap.parse_args()
    gt, preds = generate(args.images, args.classes, args.dets)
    print(f"{args.images} images, {args.classes} classes, {len(gt['annotations'])} boxes, "
          f"{len(preds)} detections")
    ref_in = (copy.deepcopy(gt), copy.deepcopy(preds))  # pycocotools modifies its inputs
    t0 = time.perf_counter()
    ref = pycocotools_stats(*ref_in)
    t_ref = time.perf_counter() - t0
    times = {}
    for engine in ("faster", "pycocotools"):
        t0 = time.perf_counter()
        ours = evaluate(gt, preds, engine=engine)
        times[engine] = time.perf_counter() - t0
        diff = np.abs(np.array([ours.stats[k] for k in STAT_KEYS]) - ref).max()
        assert diff <= 1e-9, f"engine {engine}: 12 numbers differ from pycocotools by {diff}"
        print(f"evaluate(engine={engine:<11}) {times[engine]:7.2f} s   max |diff| {diff:.1e}")
    print(f"pycocotools COCOeval          {t_ref:7.2f} s")
    print(f"speed-up (faster engine vs pycocotools): {t_ref / times['faster']:.2f}x")


if __name__ == "__main__":
    main()
