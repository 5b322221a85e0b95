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

from taxdet.datasets.demo import DemoConfig, GroupSummary, World, generate_world
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


def shelf_scene(rng: np.random.Generator, size: int, mix: dict, index: int
                ) -> tuple[np.ndarray, list[DemoObject]]:
    """One shelf rack (``index`` is unused: the warehouse world has no crowds)."""
    return warehouse_scene(rng, size, mix)


WAREHOUSE = World(kinds=tuple(KINDS), draw=shelf_scene, mixes=MIXES, default_mix=DEFAULT_MIX,
                  labels=leaf_labels)


def generate_warehouse(out: str | Path, taxset, cfg: DemoConfig | None = None
                       ) -> list[GroupSummary]:
    """Write the warehouse world for ``taxset`` (a ``supertax.TaxonomySet``) under ``out``."""
    return generate_world(out, taxset, cfg or warehouse_config(), WAREHOUSE)
