"""Generate the warehouse world, the second ablation world (COCO files + images).

Same layout as the driving demo (``taxdet.datasets.demo``)::

    <customer>/images/*.jpg            one folder per taxonomy of the TaxonomySet
    <customer>/annotations.json        the customer's OWN label names, only its classes
    <customer>/annotations_full.json   same images, every object in super-taxonomy leaves
    test/images/*.jpg, test/annotations.json   fully labeled test split (leaves)

Scenes are shelf racks (``taxdet.datasets.warehouse_scene``) holding 3-9 goods from a
per-customer mix of every kind, so each customer's images also contain the goods its
taxonomy does not label. The shipped taxonomies (``taxonomies/warehouse``) make the cases the
driving world lacks: ``container`` is a parent no customer labels and is not exhaustive (its
children ``carton`` and ``tote`` are labeled by two customers), ``bottle`` is labeled by one
customer only (C, as ``Bottle``), and each bottle leaf is labeled by one customer (A plastic,
B glass) while C labels the same objects under the parent's name. Each image is a pure
function of ``(seed, group, index)``: the same seed gives identical files.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from taxdet.core.errors import ConfigError
from taxdet.datasets.demo import (
    TEST,
    DemoConfig,
    GroupSummary,
    _summary,
    _write_json,
    coco,
    customer_folders,
    super_categories,
)
from taxdet.datasets.demo_scene import DemoObject
from taxdet.datasets.warehouse_scene import BARREL, CARTON, GLASS, KINDS, PALLET, PLASTIC, TOTE
from taxdet.datasets.warehouse_scene import scene as warehouse_scene

# object-kind mix per customer (which aisles its cameras watch); unknown names use DEFAULT_MIX
MIXES = {
    "customer_a": {CARTON: .25, TOTE: .20, GLASS: .12, PLASTIC: .18, PALLET: .15, BARREL: .10},
    "customer_b": {CARTON: .20, TOTE: .15, GLASS: .22, PLASTIC: .13, PALLET: .10, BARREL: .20},
    "customer_c": {CARTON: .12, TOTE: .08, GLASS: .22, PLASTIC: .22, PALLET: .18, BARREL: .18},
}
DEFAULT_MIX = {CARTON: .18, TOTE: .15, GLASS: .17, PLASTIC: .17, PALLET: .15, BARREL: .18}


def warehouse_config(**overrides) -> DemoConfig:
    """The warehouse world's defaults (150 images per customer, 150 test images)."""
    return DemoConfig(**{"images_per_customer": 150, "test_images": 150, **overrides})


def leaf_labels(taxonomy, sup) -> dict[str, str]:
    """Object kind -> the customer's label name: the label mapped to the kind's class or its
    nearest labeled ancestor, for the kinds the taxonomy labels."""
    by_target = {lab.maps_to: lab.name for lab in taxonomy.labels if lab.maps_to is not None}
    out = {}
    for kind in KINDS:
        j = sup.column.get(kind, -1)
        while j >= 0 and sup.names[j] not in by_target:
            j = sup.parent[j]
        if j >= 0:
            out[kind] = by_target[sup.names[j]]
    return out


def render_shelves(folder: Path, group: int, count: int, mix: dict, cfg: DemoConfig
                   ) -> tuple[list[dict], list[list[DemoObject]]]:
    """Draw and save ``count`` scenes into ``folder/images``; COCO image records + objects."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, scenes = [], []
    params = {"quality": 92} if cfg.image_format == "jpg" else {}
    for i in range(count):
        pixels, objects = warehouse_scene(np.random.default_rng([cfg.seed, group, i]),
                                          cfg.image_size, mix)
        name = f"{i + 1:06d}.{cfg.image_format}"
        Image.fromarray(pixels).save(folder / "images" / name, **params)
        images.append({"id": i + 1, "file_name": name, "width": cfg.image_size,
                       "height": cfg.image_size})
        scenes.append(objects)
    return images, scenes


def generate_warehouse(out: str | Path, taxset, cfg: DemoConfig | None = None
                       ) -> list[GroupSummary]:
    """Write the warehouse world for ``taxset`` (a ``supertax.TaxonomySet``) under ``out``."""
    cfg = cfg or warehouse_config()
    if cfg.image_format not in ("jpg", "png"):
        raise ConfigError(f"image_format must be 'jpg' or 'png', got {cfg.image_format!r}")
    if cfg.image_size < 64:
        raise ConfigError(f"image_size must be at least 64, got {cfg.image_size}")
    out, sup = Path(out), taxset.super
    folders = customer_folders(out, taxset)
    full_cats = super_categories(sup)
    leaves = {k: k for k in KINDS if k in sup.column}
    summaries = []
    for group, tax in enumerate(taxset.taxonomies, start=1):
        folder = folders[tax.name]
        images, scenes = render_shelves(folder, group, cfg.images_per_customer,
                                        MIXES.get(tax.name, DEFAULT_MIX), cfg)
        own_cats = [{"id": i + 1, "name": lab.name} for i, lab in enumerate(tax.labels)]
        own = coco(images, scenes, own_cats, leaf_labels(tax, sup))
        _write_json(folder / "annotations.json", own)
        _write_json(folder / "annotations_full.json",
                    coco(images, scenes, full_cats, leaves))
        summaries.append(_summary(tax.name, scenes, own))
    images, scenes = render_shelves(out / TEST, 0, cfg.test_images, DEFAULT_MIX, cfg)
    test = coco(images, scenes, full_cats, leaves)
    _write_json(out / TEST / "annotations.json", test)
    summaries.append(_summary(TEST, scenes, test))
    return summaries
