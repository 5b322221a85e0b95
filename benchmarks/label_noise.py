"""Known annotation errors, injected with a seed into a customer's own COCO file.

Per customer, among its boxes (``iscrowd`` 0, of labels that map to a super class), disjoint
random shares are:

* dropped (``missing_box``, default 5 %);
* relabeled with another label of the same customer that maps to a super class
  (``wrong_class``, 3 %; none for a customer with a single such label);
* shifted or scaled until their IoU with the original is in ``shift_iou`` (``bad_box``, 3 %);
* duplicated: a copy with a new id, jittered by at most 2 % of its size (``duplicate_box``,
  1 %).

Each error is an ``InjectedError``: its type, the customer, the customer's image and
annotation id, and the original and new boxes (``[x, y, w, h]``) and labels.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field

import numpy as np

from taxdet.detection.linting.issues import BAD_BOX, DUPLICATE, MISSING, WRONG_CLASS
from taxdet.detection.linting.matching import box_iou
from taxdet.supertax import Taxonomy


@dataclass(frozen=True)
class NoiseConfig:
    """Shares of a customer's boxes that get each error, and the IoU band of a bad box."""

    drop: float = 0.05
    relabel: float = 0.03
    shift: float = 0.03
    duplicate: float = 0.01
    shift_iou: tuple[float, float] = (0.15, 0.45)
    seed: int = 0


@dataclass
class InjectedError:
    type: str
    customer: str
    image_id: int                    # the customer's image id
    ann_id: int                      # dropped / relabeled / moved / the new duplicate
    box: list[float]                 # the box as the noisy file has it (dropped: the original)
    orig_box: list[float]
    label: str                       # the original label
    new_label: str | None = None     # wrong_class: the label written instead
    other_ann_id: int | None = None  # duplicate_box: the annotation copied
    extra: dict = field(default_factory=dict)

    def to_dict(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None and v != {}}


def _xyxy(b: list[float]) -> np.ndarray:
    return np.array([[b[0], b[1], b[0] + b[2], b[1] + b[3]]], np.float64)


def _iou(a: list[float], b: list[float]) -> float:
    return float(box_iou(_xyxy(a), _xyxy(b))[0, 0])


def moved_box(rng: np.random.Generator, box: list[float], width: int, height: int,
              band: tuple[float, float], tries: int = 200) -> list[float] | None:
    """``box`` shifted or scaled (inside the image) to an IoU with it in ``band``; None when
    no draw of ``tries`` lands there."""
    x, y, w, h = box
    for _ in range(tries):
        if rng.random() < 0.5:
            dx, dy = rng.uniform(-0.9, 0.9) * w, rng.uniform(-0.9, 0.9) * h
            new = [x + dx, y + dy, w, h]
        else:
            sx, sy = np.exp(rng.uniform(-1.2, 1.2, size=2))
            nw, nh = w * sx, h * sy
            new = [x + (w - nw) * rng.random(), y + (h - nh) * rng.random(), nw, nh]
        x1, y1 = max(0.0, new[0]), max(0.0, new[1])
        x2, y2 = min(float(width), new[0] + new[2]), min(float(height), new[1] + new[3])
        new = [round(x1, 2), round(y1, 2), round(x2 - x1, 2), round(y2 - y1, 2)]
        if new[2] >= 2 and new[3] >= 2 and band[0] <= _iou(box, new) <= band[1]:
            return new
    return None


def _jittered(rng: np.random.Generator, box: list[float]) -> list[float]:
    x, y, w, h = box
    d = rng.uniform(-0.02, 0.02, size=4) * np.array([w, h, w, h])
    return [round(float(v), 2) for v in (x + d[0], y + d[1], w + d[2], h + d[3])]


def _counts(n: int, cfg: NoiseConfig, can_relabel: bool) -> tuple[int, int, int, int]:
    return (round(cfg.drop * n), round(cfg.relabel * n) if can_relabel else 0,
            round(cfg.shift * n), round(cfg.duplicate * n))


def inject(coco: dict, taxonomy: Taxonomy, cfg: NoiseConfig, stream: int = 0
           ) -> tuple[dict, list[InjectedError]]:
    """A noisy copy of a customer's COCO dict and the errors put in it (``stream`` draws an
    independent random stream per customer)."""
    rng = np.random.default_rng([cfg.seed, stream])
    out = copy.deepcopy(coco)
    names = {c["id"]: c["name"] for c in out["categories"]}
    mapped = [c["id"] for c in out["categories"]
              if (lab := taxonomy.label(c["name"])) is not None and lab.maps_to is not None]
    images = {img["id"]: img for img in out["images"]}
    boxes = [a for a in out["annotations"] if not a.get("iscrowd") and a["category_id"] in mapped]
    order = rng.permutation(len(boxes))
    n_drop, n_rel, n_shift, n_dup = _counts(len(boxes), cfg, len(mapped) > 1)
    errors: list[InjectedError] = []
    drop_ids = set()
    picks = iter(order.tolist())
    for _ in range(n_drop):
        a = boxes[next(picks)]
        drop_ids.add(a["id"])
        errors.append(InjectedError(MISSING, taxonomy.name, a["image_id"], a["id"], a["bbox"],
                                    a["bbox"], names[a["category_id"]]))
    for _ in range(n_rel):
        a = boxes[next(picks)]
        new = int(rng.choice([c for c in mapped if c != a["category_id"]]))
        errors.append(InjectedError(WRONG_CLASS, taxonomy.name, a["image_id"], a["id"],
                                    a["bbox"], a["bbox"], names[a["category_id"]], names[new]))
        a["category_id"] = new
    errors += _shift(rng, boxes, picks, n_shift, images, names, taxonomy.name, cfg)
    errors += _duplicate(rng, boxes, picks, n_dup, out, names, taxonomy.name)
    out["annotations"] = [a for a in out["annotations"] if a["id"] not in drop_ids]
    return out, errors


def _shift(rng, boxes, picks, count, images, names, customer, cfg) -> list[InjectedError]:
    errors: list[InjectedError] = []
    for i in picks if count else ():
        a = boxes[i]
        img = images[a["image_id"]]
        new = moved_box(rng, a["bbox"], img["width"], img["height"], cfg.shift_iou)
        if new is None:
            continue
        errors.append(InjectedError(BAD_BOX, customer, a["image_id"], a["id"], new, a["bbox"],
                                    names[a["category_id"]],
                                    extra={"iou": round(_iou(a["bbox"], new), 3)}))
        a["bbox"], a["area"] = new, new[2] * new[3]
        if len(errors) == count:
            break
    return errors


def _duplicate(rng, boxes, picks, count, out, names, customer) -> list[InjectedError]:
    errors = []
    next_id = max((a["id"] for a in out["annotations"]), default=0) + 1
    for _ in range(count):
        a = boxes[next(picks)]
        box = _jittered(rng, a["bbox"])
        out["annotations"].append({**a, "id": next_id, "bbox": box, "area": box[2] * box[3]})
        errors.append(InjectedError(DUPLICATE, customer, a["image_id"], next_id, box, a["bbox"],
                                    names[a["category_id"]], other_ann_id=a["id"]))
        next_id += 1
    return errors
