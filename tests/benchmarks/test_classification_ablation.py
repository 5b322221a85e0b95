"""benchmarks/classification_ablation.py: the systems differ in one thing, seed statistics and
the table, and a tiny end-to-end run of two systems."""

from __future__ import annotations

import json

import numpy as np
import pytest

import taxdet.supertax as supertax
from benchmarks.classification_ablation import (
    CONCATENATED,
    main,
    parse_args,
    run_config,
    summarize,
    table,
    write_taxonomies,
)
from taxdet.datasets.demo import DemoConfig
from taxdet.datasets.demo_classification import generate_crops
from tests.paths import DRIVING

pytestmark = pytest.mark.usefixtures("one_thread")


def test_the_concatenated_systems_differ_only_in_loss_and_masking(tmp_path):
    args = parse_args([])
    cfgs = {name: run_config(args, DRIVING, loss, masked, 0, tmp_path / name)
            for name, (loss, masked) in CONCATENATED.items()}
    for cfg in cfgs.values():
        assert (cfg.model, cfg.optim, cfg.split, cfg.augment) == (
            cfgs["softmax"].model, cfgs["softmax"].optim, cfgs["softmax"].split,
            cfgs["softmax"].augment)
    assert not cfgs["naive"].run.taxonomy_mask and cfgs["naive"].loss.name == "softmax"
    assert {c.loss.name for c in cfgs.values()} == {"softmax", "bce", "focal", "hierarchical"}


def test_one_customer_taxonomies_hold_the_super_taxonomy_and_that_customer(tmp_path):
    folder = write_taxonomies(DRIVING, tmp_path / "crops", tmp_path / "b", only="customer_b")
    taxset = supertax.load(str(folder))
    assert list(taxset.index) == ["customer_b"]
    (src,) = taxset.taxonomy("customer_b").classification
    assert src.kind == "folder" and src.path == str(tmp_path / "crops" / "customer_b")


def test_summary_is_mean_and_sample_std_over_seeds_and_the_table_shows_both():
    runs = {"naive": [{"seed": 0, "accuracy": 0.8, "acc customer_a": 1.0, "top2_super": 0.9,
                       "ECE": 0.1, "AUROC": 0.6},
                      {"seed": 1, "accuracy": 0.6, "acc customer_a": 1.0, "top2_super": 0.7,
                       "ECE": 0.3, "AUROC": None}]}
    s = summarize(runs)["naive"]
    assert s["accuracy"]["mean"] == pytest.approx(0.7)
    assert s["accuracy"]["std"] == pytest.approx(np.std([0.8, 0.6], ddof=1))
    assert s["AUROC"]["mean"] == 0.6 and s["seeds"] == [0, 1]   # a missing value is skipped
    text = table(summarize(runs))
    assert "| naive | 1.000 ± 0.000 | 0.700 ± 0.141 |" in text


def test_two_systems_run_end_to_end_on_a_tiny_world(tmp_path):
    generate_crops(tmp_path / "world", supertax.load([DRIVING]),
                   DemoConfig(images_per_customer=3), 32)
    assert main(["--systems", "task-centric", "hierarchical", "--seeds", "0", "--steps", "2",
                 "--batch-size", "4", "--data", str(tmp_path / "world"),
                 "--output", str(tmp_path / "out")]) == 0
    summary = json.loads((tmp_path / "out" / "classification_ablation.json").read_text())
    assert set(summary) == {"task-centric", "hierarchical"}
    assert (tmp_path / "out" / "classification_ablation.png").stat().st_size > 0
