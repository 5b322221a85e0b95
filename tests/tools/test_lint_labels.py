"""tools/lint_labels.py: options and their help, usage and input errors (exit 2 / exit 1 naming
the file), a checkpoint's lint with its in-sample warning, and a run's validation split."""

from __future__ import annotations

import argparse
import json
import shutil
from types import SimpleNamespace

import pytest

import taxdet.supertax as supertax
from taxdet.datasets import merge
from taxdet.datasets.split import SplitConfig, write_split
from taxdet.tools import lint_labels
from tests.factories import make_checkpoint, make_tiny_taxonomies

pytestmark = pytest.mark.usefixtures("one_thread")

RUN = ("--device", "cpu", "--no-progress")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    root = tmp_path_factory.mktemp("lint")
    folder = make_tiny_taxonomies(root, images_per_customer=4)
    taxset = supertax.load([folder])
    make_checkpoint(root / "last.pt", taxset)     # untrained: plenty of low-scoring boxes
    return SimpleNamespace(root=root, taxonomies=folder, ckpt=root / "last.pt", taxset=taxset)


def test_every_option_has_help_and_shows_its_default():
    for action in lint_labels.build_parser()._actions:
        flag = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), flag
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in action.help, flag


@pytest.mark.parametrize("argv, message", [
    ((), "give --checkpoint CKPT, --run DIR or --cross-fit K"),
    (("--cross-fit", "2", "--checkpoint", "x.pt"), "without --checkpoint and --run"),
    (("--cross-fit", "1"), "needs at least 2 folds"),
    (("--checkpoint", "x.pt", "--min-score", "2"), "--min-score 2.0"),
])
def test_usage_errors_exit_2(run_tool, argv, message):
    code, _, err = run_tool("lint_labels", *argv)
    assert code == 2 and message in err


@pytest.mark.parametrize("argv, named", [
    (("--checkpoint", "{root}/missing.pt"), "--checkpoint {root}/missing.pt: file not found"),
    (("--run", "{root}/no_run"), "--run {root}/no_run: folder not found"),
    (("--run", "{root}"), "--run {root}/split.json: file not found"),
    (("--cross-fit", "2", "--config", "{root}/none.yaml"), "--config {root}/none.yaml: file "
     "not found"),
])
def test_bad_paths_exit_1_naming_the_file(run_tool, setup, argv, named):
    argv = [a.format(root=setup.root) for a in argv]
    code, _, err = run_tool("lint_labels", *argv, "--taxonomies", setup.taxonomies, *RUN)
    assert code == 1 and f"error: {named.format(root=setup.root)}" in err


def test_an_output_over_an_input_is_refused(run_tool, setup):
    target = setup.taxonomies / "customer_a.yaml"
    code, _, err = run_tool("lint_labels", "--checkpoint", setup.ckpt, "--taxonomies",
                            setup.taxonomies, "--out", target, *RUN)
    assert code == 1 and "refusing to overwrite" in err


def test_checkpoint_lint_writes_json_markdown_and_grid_and_warns_in_sample(run_tool, setup,
                                                                           tmp_path):
    out = tmp_path / "b.json"
    code, stdout, err = run_tool("lint_labels", "--checkpoint", setup.ckpt, "--taxonomies",
                                 setup.taxonomies, "--customer", "customer_b", "--min-score", "0",
                                 "--top", "5", "--out", out, "--draw", tmp_path / "draw",
                                 "--draw-count", "2", *RUN)
    assert code == 0, err
    assert "cannot tell which images it trained on" in err                   # in-sample warning
    doc = json.loads(out.read_text())
    assert doc["images"] == {"customer_b": 4} and 0 < len(doc["issues"]) <= 5
    assert {i["customer"] for i in doc["issues"]} == {"customer_b"}
    labels = {"Pedestrian_adult", "Pedestrian_child", "Car", "Truck",
              "Pedestrian_adult or Pedestrian_child"}
    assert {i.get("suggested") or i["label"] for i in doc["issues"]} <= labels   # B's own names
    assert "| customer_b | 4 |" in (tmp_path / "b.md").read_text()
    assert (tmp_path / "draw" / "lint_top_issues.png").is_file()
    assert "wrote" in stdout


def test_run_folder_lints_its_validation_split_without_warning(run_tool, setup, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(setup.ckpt, run / "last.pt")
    samples = merge(setup.taxset)[0].samples
    val = [s for s in samples if s.taxonomy == "customer_c"][:2]
    write_split(run / "split.json", [s for s in samples if s not in val], val, SplitConfig())
    code, _, err = run_tool("lint_labels", "--run", run, "--taxonomies", setup.taxonomies,
                            "--min-score", "0", *RUN)
    assert code == 0, err
    warned = [line for line in err.splitlines() if line.startswith("warning")]
    # no in-sample warning; an untrained model is told as such (validation AP, degenerate boxes)
    assert all("no validation AP recorded" in w or "degenerate boxes" in w for w in warned)
    doc = json.loads((run / "lint_val.json").read_text())            # default output in the run
    assert doc["images"] == {"customer_c": 2} and "the val split of" in doc["predictions"]
    assert {i["image_id"] for i in doc["issues"]} <= {s.image_id for s in val}
    assert (run / "lint_val.md").is_file()


def test_split_without_run_is_a_usage_error(run_tool):
    code, _, err = run_tool("lint_labels", "--checkpoint", "x.pt", "--split", "train")
    assert code == 2 and "--split needs --run" in err


def test_run_train_side_warns_in_sample_and_keeps_the_customer(run_tool, setup, tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(setup.ckpt, run / "last.pt")
    samples = merge(setup.taxset)[0].samples
    write_split(run / "split.json", samples[:-1], samples[-1:], SplitConfig())
    code, _, err = run_tool("lint_labels", "--run", run, "--split", "train", "--customer",
                            "customer_a", "--taxonomies", setup.taxonomies, *RUN)
    assert code == 0, err
    assert "warning: --split train: these images include the run's training images" in err
    doc = json.loads((run / "lint_train.json").read_text())
    assert doc["images"] == {"customer_a": 4}


def test_training_taxonomies_not_here_are_an_error_naming_the_flag(setup, run_tool, tmp_path):
    """The checkpoint's training taxonomy files name the customers' files (their own ids):
    gone, the linter stops and names --taxonomies instead of guessing."""
    from taxdet.detection.engine.checkpoint import save_atomic
    state = make_checkpoint(tmp_path / "moved.pt", setup.taxset)
    state["config"]["data"]["taxonomies"] = [str(tmp_path / "gone")]
    save_atomic(state, tmp_path / "moved.pt")
    code, _, err = run_tool("lint_labels", "--checkpoint", tmp_path / "moved.pt",
                            "--out", tmp_path / "i.json", *RUN)
    assert code == 1 and "give --taxonomies PATH" in err and "gone" in err
    assert not (tmp_path / "i.json").exists()
