"""The export's parity check (taxdet.detection.export.export_check) and staged writing: a young
checkpoint and one with huge box outputs pass; a failed check leaves nothing on disk."""

from __future__ import annotations

import fcntl

import numpy as np
import pytest

from taxdet.detection.engine.checkpoint import save_atomic
from taxdet.detection.export import export_check
from taxdet.detection.export.export_check import (
    ExportCheckError,
    check_export,
    compare,
    sample_batch,
)
from taxdet.detection.export.exporter import build_export, write_export
from taxdet.detection.export.postprocess import PostprocessConfig
from tests.factories import TINY_SIZE, make_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

BOX_BIAS = "module.box_net.predict.conv_pw.bias"
BOX_PW = "module.box_net.predict.conv_pw.weight"


def huge_box_checkpoint(path, taxset) -> None:
    """``make_checkpoint`` with the EMA box head forced to 1e4 on every regression."""
    state = make_checkpoint(path, taxset)
    state["ema"][BOX_PW] = state["ema"][BOX_PW] * 0
    state["ema"][BOX_BIAS] = state["ema"][BOX_BIAS] * 0 + 1e4
    save_atomic(state, path)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory, taxset):
    folder = tmp_path_factory.mktemp("check_ckpts")
    make_checkpoint(folder / "young.pt", taxset)
    huge_box_checkpoint(folder / "huge.pt", taxset)
    return folder


def test_generated_images_are_used_without_the_demo(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    batch = sample_batch(None, TINY_SIZE)
    assert batch.source == "generated images" and batch.images.shape == (4, 3, 128, 128)
    assert batch.sizes.tolist() == [list(s) for s in export_check.GENERATED_SIZES]


def test_sample_images_folder_without_images_is_an_error(tmp_path):
    with pytest.raises(ExportCheckError, match="--sample-images .*: no image files"):
        sample_batch(tmp_path, TINY_SIZE)


@pytest.mark.parametrize("name", ["young", "huge"])
def test_young_and_huge_box_checkpoints_pass(checkpoints, tmp_path, name):
    exported = build_export(checkpoints / f"{name}.pt")
    batch = sample_batch(None, exported.image_size)
    results = []
    out, labels = write_export(exported, tmp_path / f"{name}.onnx", "onnx",
                               verify=lambda m, lb: results.append(
                                   check_export(exported, m, lb, batch)))
    assert out.is_file() and labels.is_file() and results[0].passed
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"{name}.onnx",
                                                          f"{name}.onnx.labels.json"]
    if name == "young":
        assert results[0].detections == 4 * 100


def test_a_failed_check_leaves_nothing(checkpoints, tmp_path, monkeypatch):
    exported = build_export(checkpoints / "young.pt")
    batch = sample_batch(None, exported.image_size)
    monkeypatch.setattr(export_check, "BOX_RTOL", 0.0)
    monkeypatch.setattr(export_check, "BOX_ATOL", 0.0)
    monkeypatch.setattr(export_check, "SCORE_ATOL", -1.0)
    out = tmp_path / "new" / "m.onnx"
    with pytest.raises(ExportCheckError, match="detections differ from the eager model's"):
        write_export(exported, out, "onnx",
                     verify=lambda m, lb: check_export(exported, m, lb, batch))
    assert list(tmp_path.iterdir()) == []  # no file, no temporary folder, no created folder


def test_a_corrupt_file_fails_the_check(checkpoints, tmp_path):
    exported = build_export(checkpoints / "young.pt")
    batch = sample_batch(None, exported.image_size)

    def corrupt_then_check(model, labels):
        model.write_bytes(model.read_bytes()[:1000])
        check_export(exported, model, labels, batch)
    with pytest.raises(ExportCheckError, match="the exported file cannot be run"):
        write_export(exported, tmp_path / "m.onnx", "onnx", verify=corrupt_then_check)
    assert list(tmp_path.iterdir()) == []


def test_compare_reads_exported_outputs_at_the_eager_detections():
    rng = np.random.default_rng(0)
    A, K = 200, 3
    xy = rng.uniform(0, 100, (1, A, 2)).astype(np.float32)
    boxes = np.concatenate([xy, xy + rng.uniform(5, 30, (1, A, 2))], -1).astype(np.float32)
    logits = rng.normal(-2, 1, (1, A, K)).astype(np.float32)
    batch = export_check.SampleBatch(np.zeros((1, 3, 8, 8), np.float32),
                                     np.array([1.0], np.float32), np.array([[128, 128]]), "t")
    post = PostprocessConfig()
    same = compare((boxes, logits), (boxes.copy(), logits.copy()), batch, post)
    assert same.passed and same.detections == 100 and same.box_error == 0
    shifted = boxes.copy()
    shifted[..., 0] += 0.5  # half a pixel on boxes of 5..30 px: beyond 1e-3 x side + 0.01
    assert not compare((boxes, logits), (shifted, logits), batch, post).passed
    nudged = logits + 1e-5  # float noise in the head: within tolerance
    assert compare((boxes, logits), (boxes, nudged), batch, post).passed


def test_a_killed_exports_staging_folder_is_removed_by_the_next_export(checkpoints, tmp_path):
    out = tmp_path / "m.onnx"
    killed, running = tmp_path / ".m.onnx.staging-dead", tmp_path / ".m.onnx.staging-live"
    for folder in (killed, running):
        folder.mkdir()
        (folder / ".lock").touch()
        (folder / "m.onnx").write_bytes(b"half written")
    other = tmp_path / ".other.onnx.staging-dead"           # another output's: not touched
    other.mkdir()
    (other / ".lock").touch()
    with open(running / ".lock") as held:
        fcntl.flock(held, fcntl.LOCK_EX)                      # an export still at work
        write_export(build_export(checkpoints / "young.pt"), out, "onnx")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        ".m.onnx.staging-live", ".other.onnx.staging-dead", "m.onnx", "m.onnx.labels.json"]
