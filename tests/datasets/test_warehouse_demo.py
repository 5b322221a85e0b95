"""The warehouse world: deterministic, per-customer label subsets, the taxonomy cases it exists
for (a parent nobody labels, a parent one customer labels, leaves labeled coarsely)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import taxdet.supertax as supertax
from taxdet.datasets.warehouse_demo import generate_warehouse, leaf_labels, warehouse_config
from taxdet.datasets.warehouse_scene import KINDS
from taxdet.tools import make_demo_data
from tests.paths import WAREHOUSE

TAXSET = supertax.load([WAREHOUSE])
# written out from the YAML comments, independently of the code's ancestor walk
CUSTOMER_NAMES = {
    "customer_a": {"carton": "Carton", "tote": "Tote", "bottle_plastic": "Plastic_bottle",
                   "pallet": "Pallet"},
    "customer_b": {"carton": "Carton", "tote": "Tote", "bottle_glass": "Glass_bottle",
                   "barrel": "Barrel"},
    "customer_c": {"bottle_glass": "Bottle", "bottle_plastic": "Bottle", "pallet": "Pallet",
                   "barrel": "Barrel"},
}
CFG = warehouse_config(seed=2, images_per_customer=12, test_images=6, image_size=128)


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("warehouse")
    generate_warehouse(out, TAXSET, CFG)
    return out


def _load(world: Path, group: str, name: str = "annotations.json") -> dict:
    return json.loads((world / group / name).read_text())


def test_the_hierarchy_has_the_cases_the_ablation_needs():
    sup, labeled = TAXSET.super, {t.name: set() for t in TAXSET.taxonomies}
    for i, tax in enumerate(TAXSET.taxonomies):
        labeled[tax.name] = {n for n, m in zip(TAXSET.names, TAXSET.masks[i]) if m}
    by = {c: {t for t, cols in labeled.items() if c in cols} for c in TAXSET.names}
    container = sup.column["container"]
    assert by["container"] == set() and not sup.exhaustive[container]
    assert by["carton"] == by["tote"] == {"customer_a", "customer_b"}
    assert by["bottle"] == {"customer_c"}                       # one customer labels the parent
    assert by["bottle_glass"] == {"customer_b"} and by["bottle_plastic"] == {"customer_a"}
    assert all(by[k] for k in KINDS)                            # every leaf is labeled somewhere


def test_taxonomies_validate_without_errors(capsys):
    from taxdet.tools import validate_taxonomies
    assert validate_taxonomies.main([str(WAREHOUSE)]) == 0
    out = capsys.readouterr()
    assert "'container' is labeled by no taxonomy" in out.out + out.err


def test_customers_label_their_classes_or_the_nearest_labeled_ancestor():
    for tax in TAXSET.taxonomies:
        assert leaf_labels(tax, TAXSET.super) == CUSTOMER_NAMES[tax.name]


def test_files_are_a_pure_function_of_the_seed(tmp_path):
    small = warehouse_config(seed=5, images_per_customer=2, test_images=2, image_size=96)
    generate_warehouse(tmp_path / "one", TAXSET, small)
    generate_warehouse(tmp_path / "two", TAXSET, small)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*")
                   if p.is_file())
    assert len(files) == 3 * 2 + 1 + 3 * 2 + 2                  # json + images
    for f in files:
        assert (tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes(), f
    generate_warehouse(tmp_path / "three", TAXSET, warehouse_config(
        seed=6, images_per_customer=2, test_images=2, image_size=96))
    assert (tmp_path / "three" / "test" / "annotations.json").read_bytes() != \
        (tmp_path / "one" / "test" / "annotations.json").read_bytes()


def test_own_labels_are_the_full_labels_renamed_and_filtered(world):
    for name, names in CUSTOMER_NAMES.items():
        own, full = _load(world, name), _load(world, name, "annotations_full.json")
        own_cats = {c["id"]: c["name"] for c in own["categories"]}
        full_cats = {c["id"]: c["name"] for c in full["categories"]}
        expected = Counter((a["image_id"], tuple(a["bbox"]), names[full_cats[a["category_id"]]])
                           for a in full["annotations"] if full_cats[a["category_id"]] in names)
        got = Counter((a["image_id"], tuple(a["bbox"]), own_cats[a["category_id"]])
                      for a in own["annotations"])
        assert got == expected and len(own["images"]) == CFG.images_per_customer


def test_test_split_is_fully_labeled_with_every_leaf_inside_the_image(world):
    test = _load(world, "test")
    cats = {c["id"]: c["name"] for c in test["categories"]}
    assert [c["name"] for c in test["categories"]] == list(TAXSET.names)
    kinds = Counter(cats[a["category_id"]] for a in test["annotations"])
    assert set(kinds) <= set(KINDS) and len(test["images"]) == CFG.test_images
    for a in test["annotations"]:
        x, y, w, h = a["bbox"]
        assert w >= 4 and h >= 4 and x >= 0 and y >= 0 and x + w <= 128 and y + h <= 128


def test_make_demo_data_dispatches_to_the_warehouse_world(tmp_path, capsys):
    out = tmp_path / "wh"
    assert make_demo_data.main([str(out), "--world", "warehouse", "--images-per-customer", "2",
                                "--test-images", "1", "--image-size", "96"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["customer_a", "customer_b", "customer_c",
                                                     "test"]
    names = {c["name"] for c in _load(out, "customer_c")["categories"]}
    assert names == {"Bottle", "Pallet", "Barrel"}
    assert "customer_c" in capsys.readouterr().out
