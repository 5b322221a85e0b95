"""benchmarks/seed_ablation.py: the variants' recipes, scoring both decodings, seed statistics."""

from dataclasses import replace

import numpy as np
import pytest

import taxdet.supertax as supertax
from benchmarks.ablation import recipe_config, score_both_ways
from benchmarks.seed_ablation import (
    RECIPES,
    VARIANTS,
    coarse_leaves,
    markdown,
    ratios,
    summarize,
)
from taxdet.detection.evaluation import evaluate
from taxdet.detection.model.detector_config import TrainConfig
from taxdet.detection.prediction.predictor import load_predictor, predict_images
from tests.factories import TINY_SIZE, make_checkpoint, make_demo
from tests.paths import DRIVING, WAREHOUSE

pytestmark = pytest.mark.usefixtures("one_thread")


def _cfg(name, tmp_path):
    recipe, _ = VARIANTS[name]
    return recipe_config(str(RECIPES / recipe), [str(DRIVING)], 150, 150, 0, tmp_path / name)


def test_variants_share_model_optimizer_augmentation_and_differ_in_one_thing(tmp_path):
    cfgs = {name: _cfg(name, tmp_path) for name in VARIANTS}
    for cfg in cfgs.values():
        assert (cfg.model.name, cfg.model.image_size, cfg.optim, cfg.augment) == (
            "efficientdet_d0", 256, cfgs["oracle"].optim, cfgs["oracle"].augment)
    assert cfgs["naive"].run.taxonomy_mask is False
    assert cfgs["strict"].loss.certain_cells == "none"
    default = TrainConfig().loss
    assert cfgs["coarse"].loss == cfgs["oracle"].loss == default      # the default loss
    assert cfgs["certain"].loss == replace(default, coarse_children="none")
    assert cfgs["pseudo"].pseudo.enabled and not cfgs["certain"].pseudo.enabled
    assert cfgs["separate"].model.heads == "per-taxonomy"


def _scores(ap, per_class):
    return {mode: {"AP": ap, "AP50": ap + 0.2, "per_class": per_class} for mode in
            ("flat", "hierarchy")}


def test_summary_gives_mean_and_sample_std_over_seeds_and_the_target_ratios():
    runs = {"naive": {0: _scores(0.4, {"car": 0.3}), 1: _scores(0.5, {"car": 0.5})},
            "certain": {0: _scores(0.5, {"car": 0.4}), 1: _scores(0.6, {"car": None})},
            "oracle": {0: _scores(0.6, {"car": 0.6}), 1: _scores(0.6, {"car": 0.6})}}
    s = summarize(runs, ["car"])
    assert s["naive"]["flat"]["AP"]["mean"] == pytest.approx(0.45)
    assert s["naive"]["flat"]["AP"]["std"] == pytest.approx(np.std([0.4, 0.5], ddof=1))
    assert s["certain"]["hierarchy"]["per_class"]["car"]["values"] == [0.4, 0.0]   # None = 0
    table = markdown(s, ["car"], "flat")
    assert "| car | 0.400 ± 0.141 | 0.200 ± 0.283 | 0.600 ± 0.000 |" in table
    assert "| **mAP** | 0.450 ± 0.071 | 0.550 ± 0.071 | 0.600 ± 0.000 |" in table
    one = summarize({"naive": {0: _scores(0.4, {"car": 0.3})}}, ["car"])
    assert "| car | 0.300 |" in markdown(one, ["car"], "flat")          # no std from one seed
    assert ratios(s, "flat", ["car"]) == [
        "certain / naive mAP = 1.222x (target >= 1.15x)",
        "certain / oracle mAP = 0.917x (target >= 0.95x)",
        "certain: coarsely labeled leaves / oracle AP: car 0.333x (target >= 0.90x each)",
        "certain: classes > 0.02 AP below naive: car -0.200"]


def test_coarse_leaves_are_the_classes_another_customer_labels_under_a_parent():
    assert coarse_leaves(supertax.load([str(WAREHOUSE)])) == ["bottle_glass", "bottle_plastic"]
    # driving: A labels Human (person), C labels vehicle
    assert coarse_leaves(supertax.load([str(DRIVING)])) == [
        "pedestrian_adult", "pedestrian_child", "car", "truck"]


def test_scoring_both_ways_shares_one_forward_and_matches_the_predictor(taxset, tmp_path):
    demo = make_demo(tmp_path / "demo", taxset)
    make_checkpoint(tmp_path / "ckpt.pt", taxset)
    test_gt = demo / "test" / "annotations.json"
    cfg = TrainConfig.from_dict({"model": {"image_size": TINY_SIZE}, "optim": {"batch_size": 2}})
    both = score_both_ways(tmp_path / "ckpt.pt", test_gt, taxset, cfg)
    for mode, decoding in (("flat", False), ("hierarchy", True)):
        predictor, _, _ = load_predictor(tmp_path / "ckpt.pt", hierarchy_decoding=decoding)
        results = predict_images(predictor, test_gt, test_gt.parent / "images", taxset=taxset,
                                 image_size=TINY_SIZE,
                                 batch_size=2, progress=False)
        alone = evaluate(str(test_gt), results, taxset=taxset)
        assert both[mode].stats == pytest.approx(alone.stats, nan_ok=True)
