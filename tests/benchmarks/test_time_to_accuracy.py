"""benchmarks/time_to_accuracy.py: recipe configs over the base, reuse of finished runs."""

import json

from benchmarks.time_to_accuracy import finished, markdown, recipe_config
from tests.paths import DRIVING, REPO


def test_a_recipe_sets_its_options_and_the_script_sets_budget_seed_and_output(tmp_path):
    cfg = recipe_config(str(REPO / "benchmarks" / "recipes" / "demo.yaml"), [str(DRIVING)],
                        steps=40, eval_every=10, seed=3, output=tmp_path / "run")
    assert (cfg.optim.lr, cfg.augment.scale_jitter) == (0.005, (0.9, 1.1))
    assert (cfg.optim.steps, cfg.run.val_every, cfg.run.seed) == (40, 10, 3)
    assert cfg.run.output == str(tmp_path / "run") and cfg.data.taxonomies == [str(DRIVING)]


def test_only_a_run_that_reached_its_step_budget_counts_as_finished(tmp_path):
    cfg = recipe_config("", [str(DRIVING)], steps=40, eval_every=10, seed=0, output=tmp_path)
    assert finished(cfg) == []
    point = {"step": 30, "train_seconds": 60.0, "AP": 0.2, "AP50": 0.4}
    (tmp_path / "tta.json").write_text(json.dumps([point]))
    assert finished(cfg) == []                       # stopped at 30 of 40 steps
    (tmp_path / "tta.json").write_text(json.dumps([point, {**point, "step": 40, "AP": 0.3}]))
    assert [p["step"] for p in finished(cfg)] == [30, 40]
    assert "| run-a | 40 | 1.0 | 0.300 | 0.400 | 0.200 0.300 |" in markdown(
        {"run-a": finished(cfg)})
