"""The one output rule (``taxdet.core.files.check_outputs``), tool by tool: no output replaces an
input of any kind (also with ``--overwrite``), an existing file is replaced only when it is the
tool's own earlier output of the same kind (the folder's ``.taxdet-outputs.json``) or with
``--overwrite``, and drawings never go into an input folder. Every refusal exits 1, names the
path, and leaves the disk as it was."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest

import taxdet.supertax as supertax
from taxdet.core import output_owner
from tests.factories import make_checkpoint, make_tiny_taxonomies

pytestmark = pytest.mark.usefixtures("one_thread")


@dataclass
class World:
    root: Path
    tax: Path
    ckpt: Path

    @property
    def gt(self) -> Path:
        return self.root / "demo" / "customer_a" / "annotations.json"

    @property
    def images(self) -> Path:
        return self.root / "demo" / "customer_a" / "images"

    @property
    def image(self) -> Path:
        return sorted(self.images.iterdir())[0]

    @property
    def yaml(self) -> Path:
        return self.tax / "customer_a.yaml"

    @property
    def preds(self) -> Path:
        return self.root / "inputs" / "preds.json"

    @property
    def thresholds(self) -> Path:
        return self.root / "inputs" / "thresholds.yaml"

    @property
    def config(self) -> Path:
        return self.root / "inputs" / "train.yaml"


@pytest.fixture(scope="module")
def w(tmp_path_factory) -> World:
    root = tmp_path_factory.mktemp("rule")
    tax = make_tiny_taxonomies(root, images_per_customer=2)
    (root / "inputs").mkdir()
    ckpt = root / "inputs" / "last.pt"
    make_checkpoint(ckpt, supertax.load([tax]))
    (root / "inputs" / "preds.json").write_text("[]")
    (root / "inputs" / "thresholds.yaml").write_text("thresholds: {}\n")
    (root / "inputs" / "train.yaml").write_text("optim: {lr: 0.01}\n")
    return World(root, tax, ckpt)


KINDS = ("image", "taxonomy", "ground truth", "predictions", "checkpoint", "thresholds",
         "config")


def _target(w: World, kind: str) -> Path:
    return {"image": w.image, "taxonomy": w.yaml, "ground truth": w.gt, "predictions": w.preds,
            "checkpoint": w.ckpt, "thresholds": w.thresholds, "config": w.config}[kind]


def _argv(w: World, tool: str, flag: str, target: Path) -> list:
    """A command of ``tool`` that reads every kind of input it can and writes ``flag`` to
    ``target``."""
    if tool == "evaluate":
        return ["--gt", w.gt, "--predictions", w.preds, "--taxonomies", w.tax,
                "--images", w.images, "--draw", w.root / "drawn", flag, target]
    if tool == "predict":
        return ["--checkpoint", w.ckpt, "--images", w.images, "--taxonomies", w.tax,
                "--thresholds", w.thresholds, "--customer", "customer_a", "--categories", w.gt,
                flag, target]
    if tool == "fit_anchors":
        return ["--taxonomies", w.tax, "--config", w.config, "--image-size", "128",
                flag, target]
    if tool == "merge_datasets":
        return ["--taxonomies", w.tax, "--out", w.root / "x" / "super.json", flag, target] \
            if flag == "--report" else ["--taxonomies", w.tax, flag, target]
    if tool == "evaluate_classifier":
        return ["--checkpoint", w.ckpt, "--data", w.tax, "--ood", w.images, flag, target]
    if tool == "export":
        return ["--checkpoint", w.ckpt, "--format", "torchscript", flag, target]
    raise AssertionError(tool)


# (tool, output flag, the kinds of input it reads)
TOOLS = [
    ("evaluate", "--json", ("image", "taxonomy", "ground truth", "predictions")),
    ("evaluate", "--markdown", ("image", "taxonomy", "ground truth", "predictions")),
    ("evaluate", "--fit-thresholds", ("image", "taxonomy", "ground truth", "predictions")),
    ("predict", "--out", ("image", "taxonomy", "ground truth", "checkpoint", "thresholds")),
    ("fit_anchors", "--out", ("image", "taxonomy", "ground truth", "config")),
    ("merge_datasets", "--out", ("image", "taxonomy", "ground truth")),
    ("merge_datasets", "--report", ("image", "taxonomy", "ground truth")),
    ("evaluate_classifier", "--json", ("image", "taxonomy", "checkpoint")),
    ("evaluate_classifier", "--markdown", ("image", "taxonomy", "checkpoint")),
    ("export", "--out", ("checkpoint",)),
]
CASES = [(tool, flag, kind) for tool, flag, kinds in TOOLS for kind in kinds]


@pytest.mark.parametrize("tool, flag, kind", CASES, ids=[f"{t}{f}-{k}" for t, f, k in CASES])
def test_no_output_replaces_an_input(w, run_tool, snapshot, tool, flag, kind):
    target = _target(w, kind)
    snap = snapshot(w.root)
    code, _, err = run_tool(tool, *_argv(w, tool, flag, target))
    assert code == 1 and f"{flag} {target}: " in err and "refusing" in err, err
    code, _, err = run_tool(tool, *_argv(w, tool, flag, target), "--overwrite")
    assert code == 1 and f"{flag} {target}: is an input of this command" in err, err
    snap.unchanged()


@pytest.mark.parametrize("tool, flag", [(t, f) for t, f, _ in TOOLS],
                         ids=[f"{t}{f}" for t, f, _ in TOOLS])
def test_an_existing_file_the_tool_did_not_write_is_refused(w, run_tool, snapshot, tmp_path,
                                                            tool, flag):
    target = tmp_path / "notes.txt"
    target.write_text("the user's own notes")
    snap = snapshot(tmp_path, w.root)
    code, _, err = run_tool(tool, *_argv(w, tool, flag, target))
    assert code == 1 and f"{flag} {target}: already exists and {tool} did not write it" in err
    assert "--overwrite replaces it" in err
    snap.unchanged()


def test_merge_replaces_its_own_earlier_output_but_not_an_edited_one(w, run_tool, tmp_path):
    out = tmp_path / "super.json"
    argv = ["--taxonomies", w.tax, "--out", out]
    assert run_tool("merge_datasets", *argv)[0] == 0
    manifest = json.loads((tmp_path / output_owner.MANIFEST).read_text())
    assert manifest["files"]["super.json"]["tool"] == "merge_datasets"
    assert run_tool("merge_datasets", *argv)[0] == 0          # its own output: replaced
    out.write_text(out.read_text() + " ")                      # edited by the user since
    code, _, err = run_tool("merge_datasets", *argv)
    assert code == 1 and "merge_datasets did not write it" in err
    assert run_tool("merge_datasets", *argv, "--overwrite")[0] == 0


def test_another_tools_output_or_another_kind_is_refused(w, run_tool, tmp_path):
    out = tmp_path / "super.json"
    assert run_tool("merge_datasets", "--taxonomies", w.tax, "--out", out)[0] == 0
    code, _, err = run_tool("fit_anchors", "--taxonomies", w.tax, "--out", out)
    assert code == 1 and "it is merge_datasets's --out output" in err
    code, _, err = run_tool("merge_datasets", "--taxonomies", w.tax, "--out",
                            tmp_path / "other.json", "--report", out)
    assert code == 1 and "it is merge_datasets's --out output" in err


def test_evaluate_replaces_its_own_json(w, run_tool, tmp_path):
    argv = ["--gt", w.gt, "--predictions", w.preds, "--json", tmp_path / "e.json"]
    assert run_tool("evaluate", *argv)[0] == 0
    code, _, err = run_tool("evaluate", *argv)
    assert code == 0, err


@pytest.mark.parametrize("where", ["the folder", "a sub-folder"])
def test_predict_never_draws_into_its_input_folder(w, run_tool, snapshot, tmp_path, where):
    draw = w.images if where == "the folder" else w.images / "drawn"
    snap = snapshot(w.root)
    code, _, err = run_tool("predict", "--checkpoint", w.ckpt, "--images", w.images,
                            "--out", tmp_path / "p.json", "--draw", draw)
    assert code == 1 and f"--draw {draw}: is an input folder" in err, err
    snap.unchanged()
    assert not (tmp_path / "p.json").exists()


def test_evaluate_never_draws_into_the_images_folder(w, run_tool, snapshot, tmp_path):
    snap = snapshot(w.root)
    code, _, err = run_tool("evaluate", "--gt", w.gt, "--predictions", w.preds, "--images",
                            w.images, "--draw", w.images, "--json", tmp_path / "e.json")
    assert code == 1 and f"--draw {w.images}: is an input folder" in err, err
    snap.unchanged()
    assert not (tmp_path / "e.json").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_predict_checks_the_draw_folder_before_writing_out(w, run_tool, tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        code, _, err = run_tool("predict", "--checkpoint", w.ckpt, "--images", w.images,
                                "--out", tmp_path / "p.json", "--draw", ro / "d")
    finally:
        ro.chmod(0o700)
    assert code == 1 and "cannot write" in err
    assert not (tmp_path / "p.json").exists()


def test_make_demo_data_replaces_only_its_own_annotations(run_tool, tmp_path):
    argv = [tmp_path / "demo", "--images-per-customer", "1", "--test-images", "1",
            "--image-size", "64"]
    assert run_tool("make_demo_data", *argv)[0] == 0
    assert run_tool("make_demo_data", *argv)[0] == 0              # its own: regenerated
    victim = tmp_path / "demo" / "customer_b" / "annotations.json"
    victim.write_text('{"images": [], "annotations": [], "categories": []}')  # a user's file
    code, _, err = run_tool("make_demo_data", *argv)
    assert code == 1 and f"{victim}: already exists and make_demo_data did not write it" in err
    assert victim.read_text().startswith('{"images": []')


def test_stale_temp_files_of_other_names_survive_a_run_start(tmp_path):
    from taxdet.detection.engine.run_folder import start_run_folder
    (tmp_path / ".user.tmp").write_text("mine")
    (tmp_path / ".notes.ab12cd34.tmp").write_text("mine too")
    (tmp_path / ".last.pt.ab12cd34.tmp").write_bytes(b"partial")
    start_run_folder(tmp_path, overwrite=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == [".notes.ab12cd34.tmp", ".user.tmp"]


@pytest.mark.parametrize("flag, value, message", [
    ("--iou", "2", "--iou 2.0: expected a value in (0, 1]"),
    ("--iou", "0", "--iou 0.0: expected a value in (0, 1]"),
    ("--top", "-1", "--top -1: expected at least 1"),
    ("--image-size", "100", "--image-size 100: must be a positive multiple of 128"),
])
def test_fit_anchors_refuses_settings_out_of_range(w, run_tool, flag, value, message):
    code, _, err = run_tool("fit_anchors", "--taxonomies", w.tax, flag, value)
    assert code == 1 and message in err, err
