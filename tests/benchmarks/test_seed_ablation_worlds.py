"""benchmarks/seed_ablation.py on both worlds: the new variants' recipes, the world defaults,
data generation when missing, and a smoke run on a tiny warehouse world."""

import json
from dataclasses import replace

import pytest

import taxdet.supertax as supertax
from benchmarks import seed_ablation
from benchmarks.ablation import recipe_config
from benchmarks.seed_ablation import RECIPES, VARIANTS, WORLDS, ensure_data, parse_args
from taxdet.datasets.demo import copy_taxonomies
from taxdet.datasets.warehouse_demo import generate_warehouse, warehouse_config
from tests.factories import TINY_SIZE
from tests.paths import WAREHOUSE

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(name, tmp_path):
    recipe, _ = VARIANTS[name]
    return recipe_config(str(RECIPES / recipe), [str(WAREHOUSE)], 300, 300, 0, tmp_path / name)


def test_new_variants_differ_from_their_base_in_one_thing(tmp_path):
    cfgs = {name: _cfg(name, tmp_path) for name in VARIANTS}
    certain, pseudo = cfgs["certain"], cfgs["pseudo"]
    assert cfgs["coarse"].loss.coarse_children == "noisy_or"
    assert replace(cfgs["coarse"].loss, coarse_children="none") == certain.loss
    assert certain.loss.coarse_children == "none"
    assert cfgs["pseudo_pos"].pseudo == replace(pseudo.pseudo, neg_threshold=0.0)
    assert cfgs["pseudo_late"].pseudo == replace(pseudo.pseudo, start_step=100)
    for name in ("coarse", "pseudo_pos", "pseudo_late"):
        assert (cfgs[name].model, cfgs[name].optim, cfgs[name].augment) == (
            certain.model, certain.optim, certain.augment)


def test_the_world_sets_the_defaults_and_flags_override_the_recipe(tmp_path):
    args = parse_args(["--world", "warehouse", "--image-size", "128", "--workers", "0"])
    assert (args.taxonomies, args.demo_data, args.output) == (
        ["taxonomies/warehouse"], "data/ablation_warehouse", "runs/ablation_warehouse")
    assert parse_args([]).taxonomies == ["taxonomies/driving"]
    cfg = recipe_config(str(RECIPES / "certain.yaml"), [str(WAREHOUSE)], 2, 2, 0, tmp_path,
                        seed_ablation.overrides(args))
    assert (cfg.model.image_size, cfg.data.workers, cfg.optim.batch_size) == (128, 0, 8)


def test_missing_training_data_is_generated_where_the_taxonomies_point(tmp_path, monkeypatch):
    taxonomies = copy_taxonomies(WAREHOUSE, tmp_path / "tax", lambda name: [
        {"annotations": str(tmp_path / "data" / name / "annotations.json"),
         "images": str(tmp_path / "data" / name / "images")}])
    calls = []

    def fake(out, taxset, cfg):
        calls.append((out, cfg.images_per_customer, cfg.test_images))
        (out / "test").mkdir(parents=True, exist_ok=True)
        (out / "test" / "annotations.json").write_text("{}")

    monkeypatch.setitem(WORLDS, "warehouse", replace(WORLDS["warehouse"], generate=fake,
                                                     taxonomies=str(taxonomies)))
    args = parse_args(["--world", "warehouse", "--demo-data", str(tmp_path / "abl"),
                       "--test-images", "7"])
    test_gt = ensure_data(args, supertax.load(args.taxonomies))
    assert calls == [(tmp_path / "data", 150, 150), (tmp_path / "abl", 150, 7)]
    assert test_gt == tmp_path / "abl" / "test" / "annotations.json"


def test_smoke_one_step_runs_on_a_tiny_warehouse_world(tmp_path):
    data = tmp_path / "data"
    generate_warehouse(data, supertax.load([WAREHOUSE]), warehouse_config(
        images_per_customer=4, test_images=2, image_size=TINY_SIZE, image_format="png"))
    taxonomies = copy_taxonomies(WAREHOUSE, tmp_path / "tax", lambda name: [
        {"annotations": str(data / name / "annotations.json"),
         "images": str(data / name / "images")}])
    out = tmp_path / "out"
    assert seed_ablation.main([
        "--world", "warehouse", "--taxonomies", str(taxonomies), "--demo-data", str(data),
        "--steps", "1", "--seeds", "0", "--variants", "coarse", "oracle", "--output", str(out),
        "--image-size", str(TINY_SIZE), "--batch-size", "2", "--workers", "0"]) == 0
    summary = json.loads((out / "seed_ablation.json").read_text())
    assert set(summary) == {"coarse", "oracle"}
    assert set(summary["coarse"]["hierarchy"]["per_class"]) == set(supertax.load(
        [WAREHOUSE]).names)
    assert (out / "coarse-masked-s0" / "coverage.json").is_file()
    assert "| container |" in (out / "seed_ablation.md").read_text()
