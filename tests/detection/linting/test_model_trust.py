"""A linter that knows when not to trust itself: its model's validation AP against the floor,
and degenerate boxes refused (dropped and counted) before any check sees them."""

from __future__ import annotations

import json
import logging

import pytest

import taxdet.supertax as supertax
from taxdet.detection.engine.checkpoint import save_atomic
from taxdet.detection.linting.lint_run import LintOptions, run_lint
from taxdet.detection.linting.model_trust import (
    AP_FLOOR,
    ValidationAP,
    trust_warning,
    validation_ap,
)
from taxdet.detection.model.drawable_boxes import INFO_KEY
from tests.factories import make_checkpoint, make_tiny_taxonomies

pytestmark = pytest.mark.usefixtures("one_thread")

BOX_BIAS = "module.box_net.predict.conv_pw.bias"
BOX_PW = "module.box_net.predict.conv_pw.weight"


def checkpoint_with(path, taxset, history=None, huge_boxes=False):
    """``make_checkpoint`` plus a training state with ``history``; with ``huge_boxes`` the EMA
    box head outputs 1e4 on every regression."""
    state = make_checkpoint(path, taxset)
    if history is not None:
        state["state"] = {"step": 5, "best_metric": 0.0, "metric": "AP", "history": history}
    if huge_boxes:
        state["ema"][BOX_PW] = state["ema"][BOX_PW] * 0
        state["ema"][BOX_BIAS] = state["ema"][BOX_BIAS] * 0 + 1e4
    save_atomic(state, path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("trust")
    folder = make_tiny_taxonomies(root, images_per_customer=3)
    return root, folder, supertax.load([folder])


def test_the_ap_comes_from_the_training_state_at_or_before_the_step(world, tmp_path):
    taxset = world[2]
    ckpt = checkpoint_with(tmp_path / "a.pt", taxset, [{"step": 2, "AP": 0.31},
                                                       {"step": 5, "AP": 0.05},
                                                       {"step": 9, "AP": 0.5}])
    ap = validation_ap(ckpt)
    assert (ap.value, ap.step) == (0.05, 5) and "training state" in ap.source
    text = trust_warning(ap, "a.pt")
    assert "federated validation AP (COCO AP@[.5:.95]) 0.050 at step 5 is below 0.2" in text
    assert trust_warning(ValidationAP(AP_FLOOR, 5, "x"), "a.pt") == ""


def test_the_ap_falls_back_to_metrics_jsonl_then_unknown(world, tmp_path):
    ckpt = checkpoint_with(tmp_path / "last.pt", world[2])
    assert validation_ap(ckpt) is None
    assert "no validation AP recorded" in trust_warning(None, "last.pt")
    (tmp_path / "metrics.jsonl").write_text(
        json.dumps({"step": 1, "loss": 3.0}) + "\n"
        + json.dumps({"step": 4, "epoch": 1, "val": {"AP": 0.42}}) + "\n")
    ap = validation_ap(ckpt)
    assert ap.value == 0.42 and ap.step == 4 and ap.source.endswith("metrics.jsonl")


def test_a_weak_model_with_huge_boxes_is_linted_with_warnings_and_counts(world, tmp_path,
                                                                        caplog):
    root, folder, taxset = world
    ckpt = checkpoint_with(tmp_path / "young.pt", taxset, [{"step": 5, "AP": 0.01}],
                           huge_boxes=True)
    opts = LintOptions(out=tmp_path / "lint.json", markdown=tmp_path / "lint.md",
                       checkpoint=ckpt, taxonomies=[str(folder)], device="cpu", workers=0,
                       progress=False, min_score=0.0)
    with caplog.at_level(logging.WARNING):
        result, samples, _ = run_lint(opts)
    report = json.loads((tmp_path / "lint.json").read_text())
    dropped = report["info"][INFO_KEY]
    assert dropped["images"] == len(samples) and dropped["boxes"] == 100 * len(samples)
    assert report["info"]["validation_ap"][str(ckpt)]["AP"] == 0.01
    assert any("0.010 at step 5 is below 0.2" in w for w in report["warnings"])
    assert [i for i in result.issues if i.type != "missing"] == []  # no box left to disagree
    assert sum("degenerate boxes" in r.getMessage() for r in caplog.records) == 1
    markdown = (tmp_path / "lint.md").read_text()
    assert "Degenerate boxes dropped: " in markdown and "(floor 0.2)" in markdown
