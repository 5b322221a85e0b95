"""Synthetic street scenes for the demo data: a background and a few drawn objects.

Everything is drawn with PIL ``ImageDraw`` from a numpy ``Generator``, so a scene is a
pure function of its generator state. Object kinds are the super-taxonomy leaves
``pedestrian_adult``, ``pedestrian_child``, ``car``, ``truck``, ``traffic_light`` plus
``dog`` (outside the super-taxonomy). Sizes are given for a 256 px image and scale
with the image side. Boxes are ``(x1, y1, x2, y2)`` ints, end exclusive: the object's
pixels are columns ``x1 .. x2-1`` and rows ``y1 .. y2-1``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np
from PIL import Image, ImageDraw

ADULT, CHILD, CAR, TRUCK, LIGHT, DOG = ("pedestrian_adult", "pedestrian_child", "car", "truck",
                                        "traffic_light", "dog")
KINDS = (ADULT, CHILD, CAR, TRUCK, LIGHT, DOG)
Box = tuple[int, int, int, int]

# kind -> (min, max) of the size drawn at 256 px and height / width of the box
_SIZE = {ADULT: ((40, 100), 3.1), CHILD: ((20, 46), 2.2), CAR: ((40, 110), 0.5),
         TRUCK: ((70, 120), 0.72), LIGHT: ((22, 56), 2.6), DOG: ((18, 36), 0.6)}
_SIZE_IS_HEIGHT = {ADULT, CHILD, LIGHT}  # the drawn size is the height (else the width)

SHIRTS = [(200, 40, 40), (40, 70, 190), (40, 150, 60), (120, 50, 150), (230, 230, 230)]
KID_SHIRTS = [(250, 200, 0), (255, 120, 0), (255, 80, 170), (0, 210, 210)]
CAR_PAINT = [(190, 20, 20), (20, 50, 170), (170, 170, 180), (25, 25, 30), (235, 235, 235),
             (20, 120, 50)]
CARGO = [(235, 235, 225), (150, 150, 150), (200, 170, 120), (140, 90, 50)]
SKIN = [(240, 200, 160), (200, 150, 110), (140, 95, 60)]


@dataclass(frozen=True)
class DemoObject:
    kind: str
    box: Box
    crowd: bool = False  # a crowd of people drawn as one group (COCO iscrowd)


def _pick(rng: np.random.Generator, options: list) -> tuple:
    return options[int(rng.integers(len(options)))]


def _box_size(kind: str, rng: np.random.Generator, f: float) -> tuple[int, int]:
    """(w, h) in pixels for an image of side ``256 * f``."""
    (lo, hi), ratio = _SIZE[kind]
    s = rng.uniform(lo, hi) * f
    w, h = (s / ratio, s) if kind in _SIZE_IS_HEIGHT else (s, s * ratio)
    return max(int(round(w)), 4), max(int(round(h)), 4)


def draw_person(d: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator, child: bool) -> None:
    """Head, shirt, legs; a child has a bigger head, a bright shirt and bare legs."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2 - 1) / 2
    head = max(w * (0.7 if child else 0.8), 3)
    d.ellipse([cx - head / 2, y1, cx + head / 2, y1 + head - 1], fill=_pick(rng, SKIN))
    waist = y1 + head + (h - head) * (0.45 if child else 0.5)
    d.rectangle([x1, y1 + head, x2 - 1, waist], fill=_pick(rng, KID_SHIRTS if child else SHIRTS))
    legs = _pick(rng, SKIN) if child else _pick(rng, [(30, 30, 60), (25, 25, 25), (90, 60, 30)])
    leg_w = max(w * 0.38, 1)
    d.rectangle([x1, waist, x1 + leg_w - 1, y2 - 1], fill=legs)
    d.rectangle([x2 - leg_w, waist, x2 - 1, y2 - 1], fill=legs)


def draw_car(d: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator) -> None:
    """Low wide body, a cabin with windows on top, two wheels."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    paint = _pick(rng, CAR_PAINT)
    d.polygon([(x1 + 0.2 * w, y1 + 0.4 * h), (x1 + 0.3 * w, y1), (x2 - 0.3 * w, y1),
               (x2 - 0.15 * w, y1 + 0.4 * h)], fill=paint)
    d.rectangle([x1 + 0.33 * w, y1 + 0.12 * h, x2 - 0.33 * w, y1 + 0.38 * h], fill=(150, 200, 235))
    d.rounded_rectangle([x1, y1 + 0.38 * h, x2 - 1, y2 - 0.18 * h], radius=max(h * 0.1, 1),
                        fill=paint)
    r = 0.2 * h
    for cx in (x1 + 0.22 * w, x2 - 0.22 * w):
        d.ellipse([cx - r, y2 - 2 * r, cx + r, y2 - 1], fill=(15, 15, 15))


def draw_truck(d: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator) -> None:
    """A tall cargo box and a lower cab (left or right), three wheels."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cab_w = 0.3 * w
    cab_left = bool(rng.integers(2))
    cx1, cx2 = (x1, x1 + cab_w) if cab_left else (x2 - cab_w, x2 - 1)
    bx1, bx2 = (x1 + cab_w + 1, x2 - 1) if cab_left else (x1, x2 - cab_w - 1)
    d.rectangle([bx1, y1, bx2, y2 - 0.15 * h], fill=_pick(rng, CARGO), outline=(60, 60, 60))
    d.rectangle([cx1, y1 + 0.3 * h, cx2, y2 - 0.15 * h], fill=_pick(rng, CAR_PAINT))
    wx1, wx2 = (cx1 + 0.15 * cab_w, cx2 - 0.3 * cab_w) if cab_left else \
        (cx1 + 0.3 * cab_w, cx2 - 0.15 * cab_w)
    d.rectangle([wx1, y1 + 0.38 * h, wx2, y1 + 0.55 * h], fill=(150, 200, 235))
    r = 0.13 * h
    for cx in (x1 + 0.15 * w, x1 + 0.5 * w, x2 - 0.15 * w):
        d.ellipse([cx - r, y2 - 2 * r, cx + r, y2 - 1], fill=(15, 15, 15))


def draw_light(d: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator) -> None:
    """Dark housing with red / amber / green lamps, one lit."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    d.rectangle([x1, y1, x2 - 1, y2 - 1], fill=(28, 28, 28))
    lit = int(rng.integers(3))
    colours = [((255, 40, 30), (90, 20, 20)), ((255, 190, 0), (90, 70, 10)),
               ((40, 255, 90), (15, 80, 30))]
    r = min(w * 0.32, h / 7)
    for i, (on, off) in enumerate(colours):
        cy = y1 + h * (2 * i + 1) / 6
        cx = (x1 + x2 - 1) / 2
        d.ellipse([cx - r, cy - r, cx + r, cy + r], fill=on if i == lit else off)


def draw_dog(d: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator) -> None:
    """Body, head on one side, four legs, a tail."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    fur = _pick(rng, [(120, 75, 35), (40, 30, 25), (200, 160, 100)])
    left = bool(rng.integers(2))
    bx1, bx2 = (x1 + 0.25 * w, x2 - 0.08 * w) if left else (x1 + 0.08 * w, x2 - 0.25 * w)
    d.ellipse([bx1, y1 + 0.25 * h, bx2, y1 + 0.7 * h], fill=fur)
    hx = x1 if left else x2 - 1 - 0.32 * w
    d.ellipse([hx, y1, hx + 0.32 * w, y1 + 0.45 * h], fill=fur)
    for lx in np.linspace(bx1 + 0.1 * w, bx2 - 0.18 * w, 4):
        d.rectangle([lx, y1 + 0.55 * h, lx + max(0.08 * w, 1), y2 - 1], fill=fur)
    tx = x2 - 0.08 * w if left else x1
    d.line([(tx, y1 + 0.4 * h), (tx + 0.08 * w, y1 + 0.15 * h)], fill=fur, width=2)


def draw_object(d: ImageDraw.ImageDraw, obj: DemoObject, rng: np.random.Generator) -> None:
    kind = obj.kind
    if kind in (ADULT, CHILD):
        draw_person(d, obj.box, rng, child=kind == CHILD)
    elif kind == CAR:
        draw_car(d, obj.box, rng)
    elif kind == TRUCK:
        draw_truck(d, obj.box, rng)
    elif kind == LIGHT:
        draw_light(d, obj.box, rng)
    elif kind == DOG:
        draw_dog(d, obj.box, rng)
    else:
        raise ValueError(f"unknown demo object kind {kind!r}")


def background(rng: np.random.Generator, size: int, horizon: int) -> Image.Image:
    """Sky gradient above ``horizon``, grey road with a dashed lane line below."""
    y = np.arange(size, dtype=np.float32)[:, None, None] / max(horizon, 1)  # [H, 1, 1]
    sky = np.array([120, 170, 230], np.float32) + y * 70 * np.array([1, 0.6, 0.1])  # [H, 1, 3]
    road_tone = rng.uniform(85, 115)
    img = np.where((np.arange(size) < horizon)[:, None, None], sky.clip(0, 255),
                   np.array([road_tone, road_tone, road_tone + 4], np.float32))
    img = np.broadcast_to(img, (size, size, 3)).astype(np.uint8)
    pil = Image.fromarray(img)
    d = ImageDraw.Draw(pil)
    d.rectangle([0, horizon, size - 1, horizon + max(size // 40, 2)], fill=(110, 140, 90))
    lane = int(horizon + (size - horizon) * rng.uniform(0.45, 0.75))
    dash = max(size // 16, 4)
    for x in range(int(rng.integers(dash)), size, 2 * dash):
        d.rectangle([x, lane, x + dash - 1, lane + max(size // 128, 1)], fill=(225, 225, 215))
    return pil


def _overlaps(box: Box, others: list[Box], max_iou: float = 0.15, max_ios: float = 0.35) -> bool:
    """True if ``box`` overlaps any of ``others`` beyond IoU / intersection-over-smaller limits."""
    x1, y1, x2, y2 = box
    a = (x2 - x1) * (y2 - y1)
    for ox1, oy1, ox2, oy2 in others:
        iw, ih = min(x2, ox2) - max(x1, ox1), min(y2, oy2) - max(y1, oy1)
        if iw <= 0 or ih <= 0:
            continue
        inter, b = iw * ih, (ox2 - ox1) * (oy2 - oy1)
        if inter / (a + b - inter) > max_iou or inter / min(a, b) > max_ios:
            return True
    return False


def place(kind: str, rng: np.random.Generator, size: int, horizon: int) -> Box:
    """A box for ``kind``: standing on the road, or (lights) hanging above the horizon."""
    w, h = _box_size(kind, rng, size / 256)
    w, h = min(w, size - 2), min(h, size - 2)
    x1 = int(rng.integers(0, size - w + 1))
    if kind == LIGHT:
        y1 = int(rng.integers(2, max(horizon - h // 2, 3)))
    else:
        bottom = int(rng.integers(min(horizon + 6, size), size + 1))
        y1 = max(bottom - h, 0)
    return x1, y1, x1 + w, y1 + h


def crowd(rng: np.random.Generator, size: int, horizon: int) -> tuple[list[DemoObject], Box]:
    """4 to 7 overlapping adults standing in a row; returns them and their union box."""
    people = []
    first = place(ADULT, rng, size, horizon)
    x = first[0]
    for _ in range(int(rng.integers(4, 8))):
        w, h = _box_size(ADULT, rng, size / 256)
        bottom = min(first[3] + int(rng.integers(-4, 5)), size)
        x1 = min(max(x, 0), size - w)
        people.append(DemoObject(ADULT, (x1, max(bottom - h, 0), x1 + w, bottom)))
        x += int(w * rng.uniform(0.5, 0.8))
    b = np.array([p.box for p in people])
    return people, (int(b[:, 0].min()), int(b[:, 1].min()), int(b[:, 2].max()), int(b[:, 3].max()))


def scene(rng: np.random.Generator, size: int, mix: Mapping[str, float], with_crowd: bool = False,
          noise: float = 5.0) -> tuple[np.ndarray, list[DemoObject]]:
    """[size, size, 3] uint8 image and its objects (a crowd is one ``crowd=True`` object).

    ``mix``: kind -> relative frequency of the 2-8 objects; ``noise``: Gaussian sigma.
    """
    horizon = int(size * rng.uniform(0.32, 0.42))
    img = background(rng, size, horizon)
    objects: list[DemoObject] = []
    drawn: list[DemoObject] = []
    if with_crowd:
        members, union = crowd(rng, size, horizon)
        objects.append(DemoObject(ADULT, union, crowd=True))
        drawn += members
    kinds, p = list(mix), np.array(list(mix.values()), float)
    for _ in range(int(rng.integers(2, 9))):
        kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
        for _attempt in range(20):
            box = place(kind, rng, size, horizon)
            if not _overlaps(box, [o.box for o in objects]):
                objects.append(DemoObject(kind, box))
                drawn.append(objects[-1])
                break
    d = ImageDraw.Draw(img)
    for obj in sorted(drawn, key=lambda o: (o.kind != LIGHT, o.box[3])):  # far (high) first
        if obj.kind == LIGHT:
            cx = (obj.box[0] + obj.box[2]) // 2
            d.line([(cx, obj.box[3]), (cx, horizon + 4)], fill=(90, 90, 95), width=2)
        draw_object(d, obj, rng)
    arr = np.asarray(img, np.float32) + rng.normal(0.0, noise, (size, size, 3))
    return arr.clip(0, 255).astype(np.uint8), objects
