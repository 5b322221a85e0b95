"""The classifier trains with the detector's loop: a few steps on tiny crops, exact resume,
the stop on a non-finite loss, checkpoints tied to the taxonomies, weights files, warm start."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import timm
import torch

import taxdet.detection.classification.classifier_wrapper as bench_mod
from taxdet.core.errors import ConfigError, OutputError
from taxdet.datasets.demo import copy_taxonomies
from taxdet.detection.classification.classifier_config import (
    ClassifierConfig,
    ClassifierModelConfig,
)
from taxdet.detection.classification.classifier_model import create_classifier, load_weights_file
from taxdet.detection.classification.classifier_predictor import load_classifier
from taxdet.detection.classification.classifier_trainer import ClassifierTrainer
from taxdet.detection.engine import checkpoint
from taxdet.detection.engine import train_step as steps
from taxdet.detection.engine.command_line import merge_trees
from tests.detection.training.test_trainer import assert_same_weights, interrupt_after, weights
from tests.factories import make_checkpoint, make_tiny_classification, read_metrics
from tests.paths import DRIVING

pytestmark = pytest.mark.usefixtures("one_thread")


def tiny_config(taxonomies: Path, output: Path, **sections) -> ClassifierConfig:
    """A CPU config that trains in seconds; ``sections`` override fields."""
    return ClassifierConfig.from_dict(merge_trees({
        "model": {"name": "mobilenetv3_small_050", "image_size": 32},
        "data": {"taxonomies": [str(taxonomies)]}, "split": {"val_fraction": 0.3},
        "optim": {"batch_size": 4, "steps": 4, "warmup_steps": 1, "lr": 0.01, "ema_decay": 0.9},
        "run": {"output": str(output), "device": "cpu", "progress": False, "log_every": 1}},
        sections))


@pytest.fixture(scope="module")
def tiny_cls(tmp_path_factory) -> Path:
    return make_tiny_classification(tmp_path_factory.mktemp("tiny_cls"))


def one_customer(tiny_cls: Path, out: Path, name: str) -> Path:
    """The tiny taxonomies with customer ``name`` alone (its crops as its data)."""
    crops = tiny_cls.parent / "crops"
    return copy_taxonomies(DRIVING, out / name, lambda t: [{"classification": str(crops / t)}],
                           only=name)


@pytest.fixture(scope="module")
def straight(tiny_cls, tmp_path_factory):
    """5 steps without interruption, validating every 2 steps."""
    out = tmp_path_factory.mktemp("straight")
    t = ClassifierTrainer(tiny_config(tiny_cls, out, optim={"steps": 5}, run={"val_every": 2}))
    t.fit()
    return t


def test_a_few_steps_write_the_run_and_a_classifier_checkpoint(straight):
    out = Path(straight.cfg.run.output)
    for name in ("config.yaml", "last.pt", "best.pt", "split.json", "metrics.jsonl",
                 "merge_report.json", "taxonomy_hash.txt"):
        assert (out / name).is_file(), name
    ckpt = checkpoint.load(out / "last.pt")
    assert ckpt["task"] == "classification" and ckpt["state"]["step"] == 5
    assert ckpt["taxonomy_hash"] == straight.taxset.hash
    vals = [r["val"] for r in read_metrics(out) if "val" in r]
    assert len(vals) == 3  # steps 2, 4 and the last
    assert set(vals[0]["per_taxonomy"]) == {t.taxonomy for t in straight.last_eval.tasks} \
        == {s.taxonomy for s in straight.data.val.samples}
    assert 0.0 <= vals[-1]["accuracy"] <= 1.0
    assert "of mobilenetv3_small_050 at 32px" in straight.summary()
    assert len(straight.data.ood) > 0   # customer a's dogs, kept aside


def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(
        straight, tiny_cls, tmp_path, monkeypatch):
    cfg = tiny_config(tiny_cls, tmp_path, optim={"steps": 5}, run={"val_every": 2})
    interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        ClassifierTrainer(cfg).fit()
    monkeypatch.undo()
    resumed = ClassifierTrainer(dataclasses.replace(cfg, run=dataclasses.replace(
        cfg.run, resume=str(tmp_path / "last.pt"))))
    assert resumed.fit().step == 5
    assert_same_weights(weights(resumed.model), weights(straight.model))
    assert_same_weights(weights(resumed.ema), weights(straight.ema))


def test_loader_workers_do_not_change_the_batches(straight, tiny_cls, tmp_path):
    t = ClassifierTrainer(tiny_config(tiny_cls, tmp_path, data={"workers": 2},
                                      optim={"steps": 5}, run={"val_every": 2}))
    t.fit()
    assert_same_weights(weights(t.model), weights(straight.model))


def test_non_finite_loss_stops_naming_step_and_images_and_keeps_last_good_checkpoint(
        tiny_cls, tmp_path, monkeypatch):
    real, calls = bench_mod.classification_loss, []

    def nan_at_step_3(*args, **kwargs):
        calls.append(1)
        out = real(*args, **kwargs)
        return out * float("nan") if len(calls) == 3 else out

    monkeypatch.setattr(bench_mod, "classification_loss", nan_at_step_3)
    t = ClassifierTrainer(tiny_config(tiny_cls, tmp_path, run={"val_every": 2}))
    ids = list(t.data.train_loader(0))[2]["image_id"].tolist()
    with pytest.raises(steps.NonFiniteLossError) as err:
        t.fit()
    msg = str(err.value)
    assert f"non-finite loss nan at step 3; batch image ids: {ids}" in msg
    assert f"the last good checkpoint is {tmp_path / 'last.pt'} (step 2)" in msg
    assert checkpoint.load(tmp_path / "last.pt")["state"]["step"] == 2


def test_a_folder_holding_a_run_is_refused(straight, tiny_cls):
    with pytest.raises(OutputError, match="already holds a run"):
        ClassifierTrainer(tiny_config(tiny_cls, Path(straight.cfg.run.output)))


def test_resuming_with_other_taxonomies_is_refused_listing_the_difference(
        straight, tiny_cls, tmp_path):
    only_b = one_customer(tiny_cls, tmp_path, "customer_b")
    last = Path(straight.cfg.run.output) / "last.pt"
    with pytest.raises(checkpoint.CheckpointError, match="customer_a' is in the checkpoint"):
        ClassifierTrainer(tiny_config(only_b, tmp_path / "run", run={"resume": str(last)}))


def test_a_detector_checkpoint_is_not_loaded_as_a_classifier(tmp_path, taxset):
    make_checkpoint(tmp_path / "det.pt", taxset)
    with pytest.raises(checkpoint.CheckpointError,
                       match="a detector checkpoint, not a classifier one"):
        load_classifier(tmp_path / "det.pt")


def test_a_changed_checkpoint_is_refused(straight, tmp_path):
    state = checkpoint.load(Path(straight.cfg.run.output) / "last.pt")
    state["model"][next(iter(state["model"]))] += 1
    torch.save({**state, "checkpoint_format": 2, "sha256": "0" * 64}, tmp_path / "bad.pt")
    with pytest.raises(checkpoint.CheckpointError, match="checksum mismatch"):
        load_classifier(tmp_path / "bad.pt")


def test_the_loaded_classifier_predicts_as_the_trained_ema(straight):
    model, taxset, cfg = load_classifier(Path(straight.cfg.run.output) / "last.pt")
    x = torch.randn(2, 3, 32, 32)
    straight.ema.module.eval()
    assert torch.allclose(model(x), straight.ema.module(x))
    assert taxset.hash == straight.taxset.hash and cfg.loss.name == "softmax"


def test_a_weights_file_loads_the_backbone_and_keeps_a_misfitting_head_fresh(tmp_path):
    torch.manual_seed(0)
    imagenet = timm.create_model("resnet10t", pretrained=False, num_classes=1000)
    torch.save(imagenet.state_dict(), tmp_path / "resnet10t.pth")
    cfg = ClassifierModelConfig("resnet10t", 32, weights=str(tmp_path / "resnet10t.pth"))
    model = create_classifier(cfg, 7)
    assert torch.equal(model.conv1[0].weight, imagenet.conv1[0].weight)
    assert model.fc.weight.shape == (7, 512)
    other = timm.create_model("resnet18", pretrained=False, num_classes=7)
    torch.save(other.state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(checkpoint.CheckpointError, match=r"resnet18.pth: the weights do not fit"):
        load_weights_file(model, str(tmp_path / "resnet18.pth"))


def test_an_unknown_timm_name_is_a_config_error():
    with pytest.raises(ConfigError, match="not a timm model .*; did you mean 'resnet18'"):
        create_classifier(ClassifierModelConfig("resnet18x"), 3)


def test_init_checkpoint_of_other_taxonomies_keeps_the_classifier_rows_by_class_name(
        straight, tiny_cls, tmp_path):
    only_c = one_customer(tiny_cls, tmp_path, "customer_c")
    last = Path(straight.cfg.run.output) / "last.pt"
    t = ClassifierTrainer(tiny_config(only_c, tmp_path / "run",
                                      run={"init_checkpoint": str(last)}))
    assert t.taxset.hash != straight.taxset.hash  # other taxonomies: classes matched by name
    assert torch.equal(t.model.classifier.weight, straight.model.classifier.weight)
    assert [k["class"] for k in t.init_mapping["kept"]] == list(t.taxset.names)
