"""tools/export.py: the model file and its label map, verified; bad input is `error:` + exit 1
and never touches the checkpoint."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pytest

import taxdet.supertax as supertax
from taxdet.detection.export import exporter
from taxdet.detection.export.runtime import ExportedModel
from taxdet.tools import export as export_tool
from tests.detection.export.export_cases import make_confident_checkpoint
from tests.paths import DRIVING

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    path = tmp_path_factory.mktemp("export_cli") / "best.pt"
    make_confident_checkpoint(path, supertax.load([DRIVING]))
    return path


def test_every_option_has_help_and_shows_its_default():
    for action in export_tool.build_parser()._actions:
        assert action.help and action.help.strip(), action.option_strings
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in action.help, action.option_strings
    assert export_tool.FORMATS == exporter.FORMATS
    assert export_tool.DEFAULT_OPSET == exporter.DEFAULT_OPSET


@pytest.mark.slow
def test_customer_onnx_export_writes_model_and_label_map(run_tool, ckpt, tmp_path):
    out = tmp_path / "models" / "customer_a.onnx"
    before = ckpt.read_bytes()
    code, stdout, stderr = run_tool("export", "--checkpoint", ckpt, "--customer", "customer_a",
                                    "--format", "onnx", "--out", out)
    assert code == 0, stderr
    assert f"wrote {out} (onnx, efficientdet_d0 at 128 px, 1 class outputs: customer customer_a" \
        in stdout
    assert "not predicted (maps_to: null): Dog" in stdout
    labels = json.loads((tmp_path / "models" / "customer_a.onnx.labels.json").read_text())
    assert labels["classes"][0]["labels"] == ["Human"] and labels["not_predicted"] == ["Dog"]
    boxes, logits = ExportedModel(out).raw(np.zeros((2, 3, 128, 128), np.float32))
    assert boxes.shape == (2, 3069, 4) and logits.shape == (2, 3069, 1)
    assert ckpt.read_bytes() == before
    assert [p.name for p in out.parent.iterdir() if p.name.endswith(".tmp")] == []


@pytest.mark.slow
def test_torchscript_export_at_another_size(run_tool, ckpt, tmp_path):
    out = tmp_path / "full.pt"
    code, stdout, stderr = run_tool("export", "--checkpoint", ckpt, "--format", "torchscript",
                                    "--out", out, "--image-size", "256")
    assert code == 0, stderr
    assert "7 class outputs: all super-taxonomy classes" in stdout and "at 256 px" in stdout
    model = ExportedModel(out)
    assert model.image_size == 256 and len(model.class_labels) == 7


@pytest.mark.parametrize("extra, message", [
    (["--customer", "nobody"], "--customer 'nobody': not a loaded taxonomy"),
    (["--image-size", "200"], "image size 200 must be a positive multiple of 128"),
    (["--image-size", "0"], "--image-size 0: must be a positive multiple of 128"),
    (["--opset", "9"], "--opset 9: must be at least 11"),
])
def test_bad_options_are_errors_and_write_nothing(run_tool, ckpt, tmp_path, extra, message):
    out = tmp_path / "m.onnx"
    code, _, stderr = run_tool("export", "--checkpoint", ckpt, "--format", "onnx",
                               "--out", out, *extra)
    assert code == 1 and stderr.startswith("error: ") and message in stderr
    assert list(tmp_path.iterdir()) == []


def test_out_over_the_checkpoint_is_refused(run_tool, ckpt):
    before = ckpt.read_bytes()
    code, _, stderr = run_tool("export", "--checkpoint", ckpt, "--format", "torchscript",
                               "--out", ckpt)
    assert code == 1 and "is an input of this command" in stderr
    assert ckpt.read_bytes() == before


def test_a_missing_or_foreign_checkpoint_is_an_error(run_tool, tmp_path):
    code, _, stderr = run_tool("export", "--checkpoint", tmp_path / "none.pt", "--format",
                               "onnx", "--out", tmp_path / "m.onnx")
    assert code == 1 and "no such checkpoint" in stderr
    (tmp_path / "x.pt").write_text("not a checkpoint")
    code, _, stderr = run_tool("export", "--checkpoint", tmp_path / "x.pt", "--format",
                               "onnx", "--out", tmp_path / "m.onnx")
    assert code == 1 and "not a readable checkpoint" in stderr
    assert not (tmp_path / "m.onnx").exists()


# ---------------------------------------------------------------------------------------------
# the parity check: real images, young models, clean failure


@pytest.fixture(scope="module")
def two_step_ckpt(tmp_path_factory):
    """``last.pt`` of a 2-step run on the tiny demo (and that demo's test images)."""
    from taxdet.detection.training.trainer import Trainer
    from tests.factories import make_tiny_taxonomies, tiny_train_config
    root = tmp_path_factory.mktemp("two_steps")
    tax = make_tiny_taxonomies(root)
    Trainer(tiny_train_config(tax, root / "run", optim={"steps": 2})).fit()
    return root / "run" / "last.pt", root / "demo" / "test" / "images"


@pytest.mark.slow
def test_a_two_step_checkpoint_exports_and_passes_on_real_images(run_tool, two_step_ckpt,
                                                                 tmp_path):
    ckpt, images = two_step_ckpt
    out = tmp_path / "young.onnx"
    code, stdout, stderr = run_tool("export", "--checkpoint", ckpt, "--format", "onnx",
                                    "--out", out, "--sample-images", images)
    assert code == 0, stderr
    assert f"checked: 200 detections on 2 images of {images}" in stdout
    assert out.is_file() and (tmp_path / "young.onnx.labels.json").is_file()


def test_huge_box_outputs_export_and_pass(run_tool, tmp_path, monkeypatch):
    from tests.detection.export.test_export_check import huge_box_checkpoint
    monkeypatch.chdir(tmp_path)  # no data/demo here: the check generates its images
    ckpt = tmp_path / "huge.pt"
    huge_box_checkpoint(ckpt, supertax.load([DRIVING]))
    out = tmp_path / "out" / "huge.pt"
    code, stdout, stderr = run_tool("export", "--checkpoint", ckpt, "--format", "torchscript",
                                    "--out", out)
    assert code == 0, stderr
    assert "checked: 0 detections on 4 images of generated images" in stdout  # all dropped


def test_a_failed_check_is_an_error_and_leaves_nothing(run_tool, ckpt, tmp_path, monkeypatch):
    from taxdet.detection.export import export_check
    monkeypatch.setattr(export_check, "BOX_RTOL", 0.0)
    monkeypatch.setattr(export_check, "BOX_ATOL", 0.0)
    monkeypatch.setattr(export_check, "SCORE_ATOL", -1.0)
    code, stdout, stderr = run_tool("export", "--checkpoint", ckpt, "--format", "torchscript",
                                    "--out", tmp_path / "m.pt")
    assert code == 1 and stderr.startswith("error: ")
    assert "detections differ from the eager model's" in stderr and "Traceback" not in stderr
    assert list(tmp_path.iterdir()) == []
    code, stdout, stderr = run_tool("export", "--checkpoint", ckpt, "--format", "torchscript",
                                    "--out", tmp_path / "m.pt", "--no-verify")
    assert code == 0, stderr
    assert "checked: not (--no-verify)" in stdout and (tmp_path / "m.pt").is_file()
