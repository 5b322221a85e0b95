"""COCO bbox evaluation backends: pycocotools (the reference) and faster-coco-eval.

Both fill the same arrays (``precision`` [T, R, C, A, M], ``recall`` [T, C, A, M]; T IoU
thresholds 0.50:0.95, R 101 recall points, C categories, A area ranges all/small/medium/
large, M maxDets 1/10/100); ``summarize`` turns them into COCO's 12 numbers exactly as
``COCOeval.summarize`` does. Both run silently (their prints are swallowed).
"""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass

import numpy as np

from taxdet.detection.evaluation.inputs import Predictions

ENGINES = ("pycocotools", "faster")
STAT_KEYS = ("AP", "AP50", "AP75", "APs", "APm", "APl",
             "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
# (is_ap, IoU threshold or None = mean over all, area index, maxDets index), as summarize does
_SUMMARY = ((1, None, 0, 2), (1, 0.5, 0, 2), (1, 0.75, 0, 2), (1, None, 1, 2), (1, None, 2, 2),
            (1, None, 3, 2), (0, None, 0, 0), (0, None, 0, 1), (0, None, 0, 2), (0, None, 1, 2),
            (0, None, 2, 2), (0, None, 3, 2))
IOU_THRS = np.linspace(0.5, 0.95, 10)
REC_THRS = np.linspace(0.0, 1.00, 101)


def _silent(*args, **kwargs) -> None:
    return None


def faster_available() -> bool:
    try:
        import faster_coco_eval  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_engine(name: str = "auto") -> str:
    """``auto`` -> ``faster`` when faster-coco-eval is importable, else ``pycocotools``."""
    if name == "auto":
        return "faster" if faster_available() else "pycocotools"
    if name not in ENGINES:
        raise ValueError(f"unknown engine {name!r}; choose auto, {', '.join(ENGINES)}")
    if name == "faster" and not faster_available():
        raise ValueError("engine 'faster' needs faster-coco-eval (pip install faster-coco-eval)")
    return name


@dataclass
class CocoArrays:
    """Accumulated COCO results for C categories (``category_ids`` order)."""

    precision: np.ndarray  # [T, R, C, A, M], -1 where the category has no ground truth
    recall: np.ndarray     # [T, C, A, M]
    category_ids: list[int]

    @classmethod
    def empty(cls, category_ids: list[int]) -> CocoArrays:
        c = len(category_ids)
        return cls(-np.ones((10, 101, c, 4, 3)), -np.ones((10, c, 4, 3)), list(category_ids))

    def take(self, category_ids: list[int]) -> CocoArrays:
        """The arrays of a subset of categories."""
        idx = [self.category_ids.index(c) for c in category_ids]
        return CocoArrays(self.precision[:, :, idx], self.recall[:, idx], list(category_ids))


def summarize(arrays: CocoArrays) -> dict[str, float]:
    """COCO's 12 numbers (``COCOeval.summarize``): means over entries > -1, else -1."""
    out = {}
    for key, (is_ap, thr, area, mdet) in zip(STAT_KEYS, _SUMMARY):
        s = arrays.precision[..., area, mdet] if is_ap else arrays.recall[..., area, mdet]
        if thr is not None:
            s = s[np.where(thr == IOU_THRS)[0]]
        valid = s[s > -1]
        out[key] = float(np.mean(valid)) if len(valid) else -1.0
    return out


def detection_dicts(preds: Predictions) -> list[dict]:
    """COCO result dicts as ``COCO.loadRes`` prepares them (ids 1..D, area = w * h)."""
    boxes = preds.boxes.tolist()
    return [{"id": i + 1, "image_id": img, "category_id": cat, "bbox": box, "score": score,
             "area": box[2] * box[3], "iscrowd": 0}
            for i, (img, cat, box, score) in enumerate(zip(preds.image_ids.tolist(),
                                                           preds.category_ids.tolist(), boxes,
                                                           preds.scores.tolist()))]


def make_coco(dataset: dict, engine: str):
    """An indexed COCO object of ``engine`` over ``dataset`` (not copied: pass your own dicts)."""
    if engine == "faster":
        from faster_coco_eval import COCO
        coco = COCO(print_function=_silent)
    else:
        from pycocotools.coco import COCO
        coco = COCO()
    coco.dataset = dataset
    with contextlib.redirect_stdout(io.StringIO()):
        coco.createIndex()
    return coco


def results_dataset(gt: dict, dets: list[dict]) -> dict:
    return {"images": gt["images"], "categories": gt["categories"], "annotations": dets}


def run(coco_gt, coco_dt, engine: str, image_ids: list[int], category_ids: list[int]) -> CocoArrays:
    """Evaluate+accumulate bbox results over the given images and categories."""
    if not category_ids or not image_ids:
        return CocoArrays.empty(category_ids)
    if engine == "faster":
        from faster_coco_eval import COCOeval_faster
        ev = COCOeval_faster(coco_gt, coco_dt, "bbox", print_function=_silent)
    else:
        from pycocotools.cocoeval import COCOeval
        ev = COCOeval(coco_gt, coco_dt, "bbox")
    ev.params.imgIds = sorted(image_ids)
    ev.params.catIds = sorted(category_ids)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
    arrays = CocoArrays(np.asarray(ev.eval["precision"], dtype=np.float64),
                        np.asarray(ev.eval["recall"], dtype=np.float64), sorted(category_ids))
    return arrays.take(list(category_ids))
