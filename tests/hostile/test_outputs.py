"""Outputs never destroy inputs or runs, are written atomically, and bad output paths or
settings are clear errors (exit 1, the path named, nothing changed on disk)."""

from __future__ import annotations

import json
import os

import pytest

from taxdet.core import files as files
from tests.factories import make_tiny_taxonomies


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Tiny demo data (2 images per customer) and taxonomies pointing at it."""
    root = tmp_path_factory.mktemp("world")
    return root, make_tiny_taxonomies(root, images_per_customer=2)


def a_demo_image(root):
    return next((root / "demo" / "customer_a" / "images").iterdir())


@pytest.mark.parametrize("target", ["annotations", "yaml", "image"])
def test_merge_refuses_an_output_that_is_one_of_its_inputs(world, run_tool, snapshot, target):
    root, tax = world
    path = {"annotations": root / "demo" / "customer_a" / "annotations.json",
            "yaml": tax / "customer_a.yaml", "image": a_demo_image(root)}[target]
    for flag in ("--out", "--report"):
        snap = snapshot(root)
        other = root / "elsewhere.json"
        args = ["--out", path, "--report", other] if flag == "--out" else [
            "--out", other, "--report", path]
        code, _, err = run_tool("merge_datasets", "--taxonomies", tax, *args, "--overwrite")
        assert code == 1 and f"{flag} {path}: is an input of this command" in err
        code, _, err = run_tool("merge_datasets", "--taxonomies", tax, *args)
        assert code == 1 and f"{flag} {path}: " in err and "refusing" in err
        snap.unchanged()


def test_merge_refuses_the_same_file_for_out_and_report(world, run_tool, snapshot, tmp_path):
    root, tax = world
    out = tmp_path / "super.json"
    out.write_text("previous")
    snap = snapshot(tmp_path, root)
    code, _, err = run_tool("merge_datasets", "--taxonomies", tax, "--out", out, "--report", out)
    assert code == 1 and f"--report {out}: the same file as --out" in err
    snap.unchanged()


@pytest.mark.parametrize("case", ["folder", "under a file"])
def test_merge_output_that_cannot_be_a_file_is_an_error(world, run_tool, tmp_path, case):
    _, tax = world
    (tmp_path / "plain").write_text("x")
    out = tmp_path if case == "folder" else tmp_path / "plain" / "super.json"
    code, _, err = run_tool("merge_datasets", "--taxonomies", tax, "--out", out)
    assert code == 1 and str(out) in err
    assert ("is a folder" in err) if case == "folder" else ("is a file, not a folder" in err)
    assert (tmp_path / "plain").read_text() == "x"


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_merge_into_a_read_only_folder_is_an_error(world, run_tool, tmp_path):
    _, tax = world
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        code, _, err = run_tool("merge_datasets", "--taxonomies", tax,
                                "--out", folder / "super.json")
    finally:
        folder.chmod(0o700)
    assert code == 1 and "cannot write" in err and str(folder) in err


def test_merge_writes_super_json_and_report_when_paths_are_fine(world, run_tool, tmp_path):
    _, tax = world
    code, out, _ = run_tool("merge_datasets", "--taxonomies", tax, "--out",
                            tmp_path / "s.json", "--report", tmp_path / "r.json")
    assert code == 0 and json.loads((tmp_path / "s.json").read_text())["images"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [  # no temp files; the manifest
        ".taxdet-outputs.json", "r.json", "s.json"]


@pytest.mark.parametrize("flag", ["--json", "--markdown"])
def test_evaluate_refuses_to_write_over_its_ground_truth_or_predictions(
        run_tool, snapshot, tmp_path, flag):
    gt = {"images": [{"id": 1, "width": 10, "height": 10, "file_name": "a.png"}],
          "annotations": [], "categories": [{"id": 1, "name": "car"}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text("[]")
    for target in ("gt.json", "pred.json"):
        snap = snapshot(tmp_path)
        code, _, err = run_tool("evaluate", "--gt", tmp_path / "gt.json", "--predictions",
                                tmp_path / "pred.json", flag, tmp_path / target)
        assert code == 1 and f"{flag} {tmp_path / target}: is an input" in err
        snap.unchanged()


def test_evaluate_json_under_a_file_is_an_error(run_tool, tmp_path):
    gt = {"images": [], "annotations": [], "categories": [{"id": 1, "name": "car"}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "pred.json").write_text("[]")
    code, _, err = run_tool("evaluate", "--gt", tmp_path / "gt.json", "--predictions",
                            tmp_path / "pred.json", "--json", tmp_path / "pred.json" / "x.json")
    assert code == 1 and "is a file, not a folder" in err


@pytest.mark.parametrize("existing", [["last.pt", "config.yaml"], ["metrics.jsonl"]])
def test_train_refuses_an_output_folder_that_holds_a_run(world, run_tool, snapshot, tmp_path,
                                                         existing):
    _, tax = world
    for name in existing:
        (tmp_path / name).write_text("an earlier run")
    snap = snapshot(tmp_path)
    code, _, err = run_tool("train", "--taxonomies", tax, "--output", tmp_path, "--steps", "1")
    assert code == 1 and f"run.output {tmp_path}: already holds a run" in err
    assert "--overwrite" in err
    snap.unchanged()


def test_train_refuses_resume_together_with_overwrite(world, run_tool, tmp_path):
    _, tax = world
    code, _, err = run_tool("train", "--taxonomies", tax, "--output", tmp_path,
                            "--resume", tmp_path / "last.pt", "--overwrite")
    assert code == 1 and "choose one" in err


@pytest.mark.parametrize("flag, value, message", [
    ("--batch-size", "0", "batch_size must be >= 1, got 0"),
    ("--optim.lr", "-1", "lr must be >= 0.0"),
    ("--optim.ema_decay", "1.5", "ema_decay must be in [0.0, 1.0]"),
    ("--workers", "-1", "workers must be >= 0"),
    ("--val-every", "-5", "val_every must be >= 0"),
])
def test_train_setting_out_of_range_is_an_error(world, run_tool, tmp_path, flag, value, message):
    _, tax = world
    code, _, err = run_tool("train", "--taxonomies", tax, "--output", tmp_path / "run",
                            flag, value)
    assert code == 1 and message in err
    assert not (tmp_path / "run").exists()


def test_train_config_with_a_yaml_syntax_error_names_the_file(run_tool, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("optim:\n  lr: [0.1\n")
    code, _, err = run_tool("train", "--config", config, "--output", tmp_path / "run")
    assert code == 1 and f"{config}: not valid YAML" in err


def test_a_failed_atomic_write_keeps_the_old_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "super.json"
    path.write_text("old content")
    with pytest.raises(RuntimeError):
        with files.atomic_open(path) as f:
            f.write("half of the new")
            raise RuntimeError("killed")
    assert path.read_text() == "old content"
    assert [p.name for p in tmp_path.iterdir()] == ["super.json"]


def test_temp_files_of_killed_writes_are_removed(tmp_path):
    (tmp_path / ".last.pt.x1y2.tmp").write_bytes(b"partial")
    (tmp_path / "keep.tmp").write_text("not ours: no leading dot")
    removed = files.remove_stale_temps(tmp_path)
    assert [p.name for p in removed] == [".last.pt.x1y2.tmp"]
    assert [p.name for p in tmp_path.iterdir()] == ["keep.tmp"]


def test_atomic_writes_get_the_usual_permissions_not_mkstemps_0600(tmp_path):
    mask = os.umask(0o022)
    try:
        files.write_atomic(tmp_path / "model.onnx", b"x")
    finally:
        os.umask(mask)
    assert (tmp_path / "model.onnx").stat().st_mode & 0o777 == 0o644
