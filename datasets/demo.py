"""Generate the embedded multi-customer demo dataset (COCO files + images).

Layout written under ``out``::

    <customer>/images/*.jpg            one folder per taxonomy of the TaxonomySet
    <customer>/annotations.json        the customer's OWN label names, only its classes
    <customer>/annotations_full.json   same images, every object in super-taxonomy leaves
    test/images/*.jpg, test/annotations.json   fully labeled test split (leaves)

Every scene holds 2-8 objects drawn from a per-customer mix of adults, children,
cars, trucks, traffic lights and dogs, so each customer's images also contain the
objects its taxonomy does not label. A customer labels an object with the label
mapped to the object's class or its nearest ancestor (A's ``Human`` covers both
pedestrians, C's ``Vehicle`` cars and trucks); a label with ``maps_to: null`` labels
the object kind of the same name (A's ``Dog``). Every 25th scene holds a crowd of adults,
written as one ``iscrowd: 1`` annotation. Each image is a pure function of
``(seed, group, index)``: the same seed gives identical files.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image

from taxdet.core.errors import ConfigError
from taxdet.core.files import write_atomic
from taxdet.core.safe_names import UnsafeNameError, name_path
from taxdet.datasets.demo_scene import (
    ADULT,
    CAR,
    CHILD,
    DOG,
    KINDS,
    LIGHT,
    TRUCK,
    DemoObject,
    scene,
)

TEST = "test"
# object-kind mix per customer (the demo's "camera placements"); unknown names use DEFAULT_MIX
MIXES = {
    "customer_a": {ADULT: .30, CHILD: .20, CAR: .18, TRUCK: .10, LIGHT: .10, DOG: .12},
    "customer_b": {ADULT: .25, CHILD: .17, CAR: .28, TRUCK: .15, LIGHT: .10, DOG: .05},
    "customer_c": {ADULT: .15, CHILD: .10, CAR: .30, TRUCK: .20, LIGHT: .20, DOG: .05},
}
DEFAULT_MIX = {ADULT: .22, CHILD: .16, CAR: .24, TRUCK: .14, LIGHT: .16, DOG: .08}
SMALL_CUSTOMER = {"customer_c": 2 / 3}  # fraction of images_per_customer (oversampled by weight)
CROWD_EVERY = 25  # images i with i % CROWD_EVERY == CROWD_EVERY // 2 hold a crowd


@dataclass(frozen=True)
class DemoConfig:
    seed: int = 0
    images_per_customer: int = 300
    test_images: int = 150
    image_size: int = 256
    image_format: str = "jpg"   # "jpg" (quality 92) or "png"


@dataclass
class GroupSummary:
    """What was written for one folder (a customer or the test split)."""

    name: str
    images: int = 0
    objects: Counter = field(default_factory=Counter)      # kind -> count (crowds separately)
    annotations: Counter = field(default_factory=Counter)  # category name -> count (own file)


def customer_labels(taxonomy, sup) -> dict[str, str]:
    """Object kind -> the customer's label name, for the kinds the taxonomy labels."""
    by_target = {lab.maps_to: lab.name for lab in taxonomy.labels if lab.maps_to is not None}
    out = {}
    for kind in KINDS:
        if kind in sup.column:
            j = sup.column[kind]
            while j >= 0 and sup.names[j] not in by_target:
                j = sup.parent[j]
            if j >= 0:
                out[kind] = by_target[sup.names[j]]
        else:
            named = [lab.name for lab in taxonomy.labels
                     if lab.maps_to is None and lab.name.casefold() == kind]
            if named:
                out[kind] = named[0]
    return out


def super_categories(sup) -> list[dict]:
    """COCO categories of the super-taxonomy: id = column + 1, supercategory = parent."""
    return [{"id": j + 1, "name": n, "supercategory": sup.parent_name(j)}
            for j, n in enumerate(sup.names)]


def _annotations(objects: list[DemoObject], image_id: int, names: dict[str, str],
                 cat_id: dict[str, int], first_id: int) -> list[dict]:
    out = []
    for obj in objects:
        if obj.kind not in names:
            continue
        x1, y1, x2, y2 = obj.box
        w, h = x2 - x1, y2 - y1
        out.append({"id": first_id + len(out), "image_id": image_id,
                    "category_id": cat_id[names[obj.kind]], "bbox": [x1, y1, w, h],
                    "area": w * h, "iscrowd": int(obj.crowd)})
    return out


def coco(images: list[dict], scenes: list[list[DemoObject]], categories: list[dict],
         names: dict[str, str]) -> dict:
    """A COCO dict labeling the objects whose kind is in ``names`` (kind -> category name)."""
    cat_id = {c["name"]: c["id"] for c in categories}
    anns: list[dict] = []
    for img, objects in zip(images, scenes):
        anns += _annotations(objects, img["id"], names, cat_id, len(anns) + 1)
    return {"images": images, "annotations": anns, "categories": categories}


Draw = Callable[[np.random.Generator, int, dict, int], tuple[np.ndarray, list[DemoObject]]]


def street_scene(rng: np.random.Generator, size: int, mix: dict, index: int
                 ) -> tuple[np.ndarray, list[DemoObject]]:
    """The driving world's scene ``index`` of a group: every ``CROWD_EVERY``-th holds a crowd."""
    return scene(rng, size, mix, with_crowd=index % CROWD_EVERY == CROWD_EVERY // 2)


def render_group(folder: Path, group: int, count: int, mix: dict, cfg: DemoConfig,
                 draw: Draw = street_scene) -> tuple[list[dict], list[list[DemoObject]]]:
    """Draw and save ``count`` scenes into ``folder/images``; COCO image records + objects."""
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images, scenes = [], []
    params = {"quality": 92} if cfg.image_format == "jpg" else {}
    for i in range(count):
        pixels, objects = draw(np.random.default_rng([cfg.seed, group, i]), cfg.image_size,
                               mix, i)
        name = f"{i + 1:06d}.{cfg.image_format}"
        Image.fromarray(pixels).save(folder / "images" / name, **params)
        images.append({"id": i + 1, "file_name": name, "width": cfg.image_size,
                       "height": cfg.image_size})
        scenes.append(objects)
    return images, scenes


def _write_json(path: Path, data: dict) -> None:
    write_atomic(path, json.dumps(data, indent=1))


def _summary(name: str, scenes: list[list[DemoObject]], own: dict) -> GroupSummary:
    s = GroupSummary(name, images=len(scenes))
    for objects in scenes:
        s.objects.update("crowd" if o.crowd else o.kind for o in objects)
    cats = {c["id"]: c["name"] for c in own["categories"]}
    s.annotations.update(cats[a["category_id"]] for a in own["annotations"])
    return s


def customer_folders(out: Path, taxset) -> dict[str, Path]:
    """``out/<taxonomy name>`` per customer, every name checked before anything is written
    (``taxdet.core.safe_names``; ``test`` is the test split's folder)."""
    folders = {t.name: name_path(out, t.name, "taxonomy name") for t in taxset.taxonomies}
    if TEST in folders:
        raise UnsafeNameError(f"taxonomy name {TEST!r}: the folder of the demo's test split; "
                              "rename the taxonomy")
    return folders


@dataclass(frozen=True)
class World:
    """A synthetic world: its object kinds, how a scene is drawn, the kind mix per customer,
    the customer's label of each kind, and each customer's share of ``images_per_customer``."""

    kinds: tuple[str, ...]
    draw: Draw
    mixes: dict[str, dict]
    default_mix: dict
    labels: Callable[..., dict[str, str]]  # (taxonomy, super-taxonomy) -> kind -> label
    shares: dict[str, float] = field(default_factory=dict)


def generate_world(out: str | Path, taxset, cfg: DemoConfig, world: World
                   ) -> list[GroupSummary]:
    """Write ``world`` for ``taxset`` (a ``supertax.TaxonomySet``) under ``out``: one folder per
    customer (own labels + every object in leaves) and the fully labeled test split."""
    if cfg.image_format not in ("jpg", "png"):
        raise ConfigError(f"image_format must be 'jpg' or 'png', got {cfg.image_format!r}")
    if cfg.image_size < 64:
        raise ConfigError(f"image_size must be at least 64, got {cfg.image_size}")
    out, sup = Path(out), taxset.super
    folders = customer_folders(out, taxset)
    full_cats = super_categories(sup)
    leaves = {k: k for k in world.kinds if k in sup.column}
    summaries = []
    for group, tax in enumerate(taxset.taxonomies, start=1):
        count = max(1, round(cfg.images_per_customer * world.shares.get(tax.name, 1.0)))
        mix = world.mixes.get(tax.name, world.default_mix)
        images, scenes = render_group(folders[tax.name], group, count, mix, cfg, world.draw)
        own_cats = [{"id": i + 1, "name": lab.name} for i, lab in enumerate(tax.labels)]
        own = coco(images, scenes, own_cats, world.labels(tax, sup))
        _write_json(folders[tax.name] / "annotations.json", own)
        _write_json(folders[tax.name] / "annotations_full.json",
                    coco(images, scenes, full_cats, leaves))
        summaries.append(_summary(tax.name, scenes, own))
    images, scenes = render_group(out / TEST, 0, cfg.test_images, world.default_mix, cfg,
                                  world.draw)
    test = coco(images, scenes, full_cats, leaves)
    _write_json(out / TEST / "annotations.json", test)
    summaries.append(_summary(TEST, scenes, test))
    return summaries


def generate_demo(out: str | Path, taxset, cfg: DemoConfig = DemoConfig()) -> list[GroupSummary]:
    """Write the driving demo dataset for ``taxset`` (a ``supertax.TaxonomySet``) under ``out``."""
    return generate_world(out, taxset, cfg, DRIVING)


def copy_taxonomies(source: str | Path, out: str | Path, data_of, only: str | None = None
                    ) -> Path:
    """Copies of the taxonomy YAMLs of folder ``source`` in ``out`` whose ``data:`` list is
    ``data_of(taxonomy name)`` (taxonomy ``only`` alone, if given: a one-customer set); the
    super-taxonomy files are copied as they are. Returns ``out``."""
    import yaml

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for path in sorted(Path(source).glob("*.yaml")):
        doc = yaml.safe_load(path.read_text())
        if doc.get("kind") == "taxonomy":
            if only not in (None, doc["name"]):
                continue
            doc["data"] = data_of(doc["name"])
        (out / path.name).write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


DRIVING = World(kinds=tuple(KINDS), draw=street_scene, mixes=MIXES, default_mix=DEFAULT_MIX,
                labels=customer_labels, shares=SMALL_CUSTOMER)
