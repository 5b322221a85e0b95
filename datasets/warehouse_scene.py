"""Synthetic warehouse shelf scenes, the second ablation world: a rack, a floor, drawn goods.

Everything is drawn with PIL ``ImageDraw`` from a numpy ``Generator``, so a scene is a pure
function of its generator state. Object kinds are the leaves of ``taxonomies/warehouse``:
``carton``, ``tote`` (children of ``container``), ``bottle_glass``, ``bottle_plastic``
(children of ``bottle``), ``pallet`` and ``barrel``. Each kind has its own shape and palette,
flat and high-contrast, so that an EfficientDet-D0 at 256 px tells them apart within a few
hundred steps; the two bottles differ in neck, colour and cap, the two containers in colour,
rim and handle. Sizes are given for a 256 px image and scale with the side. Boxes are
``(x1, y1, x2, y2)`` ints, end exclusive, as in ``taxdet.datasets.demo_scene``.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
from PIL import Image, ImageDraw

from taxdet.datasets.demo_scene import DemoObject, _overlaps, _pick

CARTON, TOTE, GLASS, PLASTIC, PALLET, BARREL = ("carton", "tote", "bottle_glass",
                                                "bottle_plastic", "pallet", "barrel")
KINDS = (CARTON, TOTE, GLASS, PLASTIC, PALLET, BARREL)
Box = tuple[int, int, int, int]

# kind -> ((min, max) width at 256 px, height / width)
_SIZE = {CARTON: ((30, 64), 0.8), TOTE: ((40, 76), 0.55), GLASS: ((10, 18), 3.0),
         PLASTIC: ((14, 24), 2.0), PALLET: ((64, 116), 0.3), BARREL: ((28, 46), 1.45)}
_FLOOR_ONLY = {PALLET, BARREL}           # the rest also stands on the shelves

KRAFT = [(176, 128, 76), (196, 150, 96), (150, 106, 62)]
TOTE_PLASTIC = [(30, 90, 200), (40, 160, 70), (220, 60, 40)]
GLASS_TINT = [(20, 90, 40), (100, 50, 15), (15, 60, 70)]
PLASTIC_TINT = [(190, 225, 245), (215, 240, 225), (235, 235, 240)]
CAPS = [(230, 30, 30), (30, 80, 230), (250, 200, 0)]
WOOD = [(205, 170, 110), (185, 145, 90)]
DRUM = [(25, 60, 150), (170, 25, 25), (35, 35, 35), (230, 160, 0)]


def _box_size(kind: str, rng: np.random.Generator, f: float) -> tuple[int, int]:
    """(w, h) in pixels for an image of side ``256 * f``."""
    (lo, hi), ratio = _SIZE[kind]
    w = rng.uniform(lo, hi) * f
    return max(int(round(w)), 4), max(int(round(w * ratio)), 4)


def draw_carton(d: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator) -> None:
    """Kraft box with a darker lid line, a vertical tape strip and a dark outline."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    kraft = _pick(rng, KRAFT)
    d.rectangle([x1, y1, x2 - 1, y2 - 1], fill=kraft, outline=(90, 60, 30))
    d.line([(x1, y1 + 0.22 * h), (x2 - 1, y1 + 0.22 * h)], fill=(120, 85, 45), width=2)
    d.rectangle([x1 + 0.42 * w, y1, x1 + 0.58 * w, y1 + 0.55 * h], fill=(230, 205, 150))


def draw_tote(d: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator) -> None:
    """Coloured plastic bin: a lighter rim, a dark handle slot, ribs."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    colour = _pick(rng, TOTE_PLASTIC)
    rim = tuple(min(c + 60, 255) for c in colour)
    d.rectangle([x1 + 0.04 * w, y1, x2 - 1 - 0.04 * w, y2 - 1], fill=colour)
    d.rectangle([x1, y1, x2 - 1, y1 + 0.16 * h], fill=rim)
    d.rounded_rectangle([x1 + 0.35 * w, y1 + 0.25 * h, x2 - 0.35 * w, y1 + 0.42 * h],
                        radius=max(0.06 * h, 1), fill=(20, 20, 25))
    for fy in (0.6, 0.8):
        d.line([(x1 + 0.1 * w, y1 + fy * h), (x2 - 0.1 * w, y1 + fy * h)], fill=rim, width=1)


def draw_bottle(d: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator, glass: bool) -> None:
    """Glass: dark tint, long neck, white label. Plastic: pale, short neck, bright cap."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    cx = (x1 + x2 - 1) / 2
    neck, neck_w = (0.38, 0.3) if glass else (0.16, 0.45)
    body = _pick(rng, GLASS_TINT if glass else PLASTIC_TINT)
    top = y1 + neck * h
    d.rounded_rectangle([x1, top, x2 - 1, y2 - 1], radius=max(0.2 * w, 1), fill=body,
                        outline=(60, 60, 70) if not glass else None)
    d.rectangle([cx - neck_w * w / 2, y1 + 0.06 * h, cx + neck_w * w / 2, top], fill=body)
    cap = (200, 190, 60) if glass else _pick(rng, CAPS)
    d.rectangle([cx - neck_w * w / 2 - 1, y1, cx + neck_w * w / 2 + 1, y1 + 0.08 * h], fill=cap)
    if glass:
        d.rectangle([x1, top + 0.3 * (y2 - top), x2 - 1, top + 0.6 * (y2 - top)],
                    fill=(240, 240, 230))
    else:
        for f in (0.35, 0.65):
            d.line([(x1 + 1, top + f * (y2 - top)), (x2 - 2, top + f * (y2 - top))],
                   fill=(150, 170, 190), width=1)


def draw_pallet(d: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator) -> None:
    """A top deck board and three blocks on a bottom board, light wood."""
    x1, y1, x2, y2 = box
    w, h = x2 - x1, y2 - y1
    wood = _pick(rng, WOOD)
    dark = tuple(c - 60 for c in wood)
    d.rectangle([x1, y1, x2 - 1, y1 + 0.3 * h], fill=wood, outline=dark)
    for fx in (0.0, 0.44, 0.88):
        d.rectangle([x1 + fx * w, y1 + 0.3 * h, x1 + (fx + 0.12) * w - 1, y2 - 0.25 * h],
                    fill=dark)
    d.rectangle([x1, y2 - 0.25 * h, x2 - 1, y2 - 1], fill=wood, outline=dark)


def draw_barrel(d: ImageDraw.ImageDraw, box: Box, rng: np.random.Generator) -> None:
    """A coloured drum with rounded ends and two light hoops."""
    x1, y1, x2, y2 = box
    h = y2 - y1
    colour = _pick(rng, DRUM)
    d.rounded_rectangle([x1, y1, x2 - 1, y2 - 1], radius=max(0.12 * h, 1), fill=colour)
    for fy in (0.33, 0.66):
        d.rectangle([x1, y1 + fy * h - 1, x2 - 1, y1 + fy * h + 1], fill=(200, 200, 205))
    d.ellipse([x1 + 2, y1 + 1, x2 - 3, y1 + 0.12 * h], fill=tuple(c // 2 for c in colour))


def draw_object(d: ImageDraw.ImageDraw, obj: DemoObject, rng: np.random.Generator) -> None:
    if obj.kind in (GLASS, PLASTIC):
        draw_bottle(d, obj.box, rng, glass=obj.kind == GLASS)
        return
    draw = {CARTON: draw_carton, TOTE: draw_tote, PALLET: draw_pallet, BARREL: draw_barrel}
    if obj.kind not in draw:
        raise ValueError(f"unknown warehouse object kind {obj.kind!r}")
    draw[obj.kind](d, obj.box, rng)


def background(rng: np.random.Generator, size: int, levels: list[int]) -> Image.Image:
    """Pale wall, concrete floor below the last level, orange rack beams and blue uprights."""
    wall = rng.uniform(200, 230)
    img = Image.new("RGB", (size, size), (int(wall), int(wall - 6), int(wall - 18)))
    d = ImageDraw.Draw(img)
    floor = levels[-1]
    tone = int(rng.uniform(120, 150))
    d.rectangle([0, floor, size - 1, size - 1], fill=(tone, tone, tone - 5))
    beam = max(size // 64, 2)
    for y in levels[:-1]:
        d.rectangle([0, y, size - 1, y + beam], fill=(235, 110, 20))
    for x in (int(rng.uniform(0.02, 0.1) * size), int(rng.uniform(0.9, 0.97) * size)):
        d.rectangle([x, 0, x + beam, floor], fill=(40, 70, 150))
    return img


def place(kind: str, rng: np.random.Generator, size: int, levels: list[int]) -> Box:
    """A box for ``kind`` standing on a shelf beam or (pallets, barrels always) on the floor."""
    w, h = _box_size(kind, rng, size / 256)
    w, h = min(w, size - 2), min(h, size - 2)
    x1 = int(rng.integers(0, size - w + 1))
    if kind in _FLOOR_ONLY:
        bottom = int(rng.integers(levels[-1] + 4, size + 1))
    else:
        bottom = levels[int(rng.integers(len(levels)))]
    y1 = max(bottom - h, 0)
    return x1, y1, x1 + w, y1 + h


def scene(rng: np.random.Generator, size: int, mix: Mapping[str, float], noise: float = 5.0
          ) -> tuple[np.ndarray, list[DemoObject]]:
    """[size, size, 3] uint8 image and its 3-9 objects; ``mix``: kind -> relative frequency."""
    floor = int(size * rng.uniform(0.7, 0.78))
    gap = floor * rng.uniform(0.3, 0.36)
    levels = [int(floor - 2 * gap), int(floor - gap), floor]  # two shelf beams, then the floor
    img = background(rng, size, levels)
    kinds, p = list(mix), np.array(list(mix.values()), float)
    objects: list[DemoObject] = []
    for _ in range(int(rng.integers(3, 10))):
        kind = kinds[int(rng.choice(len(kinds), p=p / p.sum()))]
        for _attempt in range(20):
            box = place(kind, rng, size, levels)
            if not _overlaps(box, [o.box for o in objects]):
                objects.append(DemoObject(kind, box))
                break
    d = ImageDraw.Draw(img)
    for obj in sorted(objects, key=lambda o: o.box[3]):                 # far (high) first
        draw_object(d, obj, rng)
    arr = np.asarray(img, np.float32) + rng.normal(0.0, noise, (size, size, 3))
    return arr.clip(0, 255).astype(np.uint8), objects
