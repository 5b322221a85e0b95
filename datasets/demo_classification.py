"""The demo's classification world: object crops of its street scenes, one ImageFolder per customer.

Layout written under ``out``::

    <customer>/<Label>/<scene>_<object>.png   crops of the objects the customer labels, in
                                              its own label names
    crops.json                                what was written (per customer and label)

Scenes are drawn as the detection demo draws them (``taxdet.datasets.demo_scene.scene`` with the
customer's mix of object kinds, ``taxdet.datasets.demo.MIXES``). Every object the customer labels
(crowds excepted) is cut out as a square around its box, with a margin of ``CONTEXT`` of its
longer side on each side (the scene's edge replicated where the square leaves it), and resized
to ``crop_size`` pixels. The label is the one a customer gives the object
(``taxdet.datasets.demo.customer_labels``): customer A's ``Human`` covers adults and children, C's
``Vehicle`` cars and trucks; A's ``Dog`` (``maps_to: null``) crops are the OOD images. Each crop
is a pure function of ``(seed, customer, scene)``: the same seed writes identical files.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import numpy as np
from PIL import Image

from taxdet.core.errors import ConfigError
from taxdet.core.files import write_atomic
from taxdet.core.safe_names import check_name, name_path
from taxdet.datasets.demo import (
    DEFAULT_MIX,
    MIXES,
    SMALL_CUSTOMER,
    DemoConfig,
    customer_folders,
    customer_labels,
)
from taxdet.datasets.demo_scene import Box, scene
from taxdet.supertax import TaxonomySet

CONTEXT = 0.15      # margin around a box, as a share of its longer side
SUMMARY = "crops.json"
GROUP_OFFSET = 100  # scene generator groups: customers' scenes differ from the detection demo's
SCENES = DemoConfig(images_per_customer=150)  # the scenes cropped: 150 per customer, 256 px
CROP_SIZE = 64


def crop_square(pixels: np.ndarray, box: Box, size: int, context: float = CONTEXT) -> np.ndarray:
    """[size, size, 3] uint8: the square around ``box`` (x1, y1, x2, y2, end exclusive) with
    ``context`` margin, cut from ``pixels`` [H, W, 3] (edges replicated outside) and resized."""
    x1, y1, x2, y2 = box
    side = max(x2 - x1, y2 - y1) * (1 + 2 * context)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    left, top = int(round(cx - side / 2)), int(round(cy - side / 2))
    n = max(int(round(side)), 1)
    h, w = pixels.shape[:2]
    pad = max(0, -left, -top, left + n - w, top + n - h)
    padded = np.pad(pixels, ((pad, pad), (pad, pad), (0, 0)), mode="edge") if pad else pixels
    square = padded[top + pad:top + pad + n, left + pad:left + pad + n]
    return np.asarray(Image.fromarray(square).resize((size, size), Image.BILINEAR))


def _customer_crops(folder: Path, group: int, count: int, mix: dict, names: dict[str, str],
                    cfg: DemoConfig, crop_size: int) -> Counter:
    """Draw ``count`` scenes and save the crops of the kinds in ``names`` (kind -> label)."""
    written: Counter = Counter()
    for i in range(count):
        rng = np.random.default_rng([cfg.seed, GROUP_OFFSET + group, i])
        pixels, objects = scene(rng, cfg.image_size, mix)
        for j, obj in enumerate(objects):
            if obj.crowd or obj.kind not in names:
                continue
            label = names[obj.kind]
            label_folder = name_path(folder, label, "label name")
            label_folder.mkdir(parents=True, exist_ok=True)
            crop = crop_square(pixels, obj.box, crop_size)
            Image.fromarray(crop).save(label_folder / f"{i + 1:05d}_{j + 1}.png")
            written[label] += 1
    return written


def generate_crops(out: str | Path, taxset: TaxonomySet, cfg: DemoConfig = SCENES,
                   crop_size: int = CROP_SIZE) -> dict[str, dict[str, int]]:
    """Write the classification world for ``taxset`` under ``out``: the objects of
    ``cfg.images_per_customer`` scenes of ``cfg.image_size`` px per customer (2/3 for the small
    customer, as in the detection demo) as ``crop_size`` px crops. Returns (and writes to
    ``crops.json``) the crops per customer and label."""
    if crop_size < 16 or cfg.image_size < 64 or cfg.images_per_customer < 1:
        raise ConfigError(f"crop size must be >= 16, scene size >= 64 and scenes per customer "
                          f">= 1, got {crop_size}, {cfg.image_size}, {cfg.images_per_customer}")
    out = Path(out)
    folders = customer_folders(out, taxset)
    for tax in taxset.taxonomies:  # label folders: every name checked before anything is written
        for label in customer_labels(tax, taxset.super).values():
            check_name(label, f"label name (taxonomy {tax.name!r})")
    summary = {}
    for group, tax in enumerate(taxset.taxonomies, start=1):
        count = max(1, round(cfg.images_per_customer * SMALL_CUSTOMER.get(tax.name, 1.0)))
        written = _customer_crops(folders[tax.name], group, count, MIXES.get(tax.name, DEFAULT_MIX),
                                  customer_labels(tax, taxset.super), cfg, crop_size)
        summary[tax.name] = dict(sorted(written.items()))
    settings = {"seed": cfg.seed, "scenes_per_customer": cfg.images_per_customer,
                "scene_size": cfg.image_size, "crop_size": crop_size}
    write_atomic(out / SUMMARY, json.dumps({"config": settings, "crops": summary}, indent=1))
    return summary
