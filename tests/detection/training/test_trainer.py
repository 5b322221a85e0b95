"""Trainer: exact resume, checkpoint contents, taxonomy-hash refusal, non-finite stop, run files.

All runs: EfficientDet-D0 at 128 px on a generated demo of 4 images per customer
(a 4, b 4, c 3 = 11 images; the content-hash split at val_fraction 0.1 puts 7 in
train and 4 in val), batch 2 -> 7 // 2 = 3 steps per epoch.
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import pytest
import torch
import yaml

import taxdet.supertax as supertax
from taxdet.detection.engine import checkpoint
from taxdet.detection.engine import train_step as steps
from taxdet.detection.engine import trainer_base as trainer_mod
from taxdet.detection.model import detector_wrappers as bench_mod
from taxdet.detection.model.detector_config import TrainConfig
from taxdet.detection.training.trainer import Trainer
from tests.factories import make_tiny_taxonomies, read_metrics
from tests.factories import tiny_train_config as tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_tax(tmp_path_factory) -> Path:
    return make_tiny_taxonomies(tmp_path_factory.mktemp("tiny"))


def weights(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


def assert_same_weights(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    differing = [k for k in a if not torch.equal(a[k], b[k])]
    assert not differing, f"{len(differing)} tensors differ, e.g. {differing[:3]}"


def interrupt_after(monkeypatch, step: int) -> None:
    """Make the run die (as if killed) when it is about to train step ``step + 1``."""
    real = trainer_mod.train_step

    def train_step(*args, **kwargs):
        if args[-1] == step + 1:  # the trainer numbers steps from 1
            raise KeyboardInterrupt(f"killed after step {step}")
        return real(*args, **kwargs)

    monkeypatch.setattr(trainer_mod, "train_step", train_step)


# ---------------------------------------------------------------------------------------------
# resume


@pytest.fixture(scope="module")
def uninterrupted(tiny_tax, tmp_path_factory):
    """5 steps straight (3 steps per epoch: epoch 0 is steps 1-3, epoch 1 steps 4-5)."""
    out = tmp_path_factory.mktemp("straight")
    t = Trainer(tiny_config(tiny_tax, out, optim={"steps": 5}, run={"val_every": 2}))
    assert t.data.steps_per_epoch == 3  # 7 train images // batch 2
    t.fit()
    return t


@pytest.mark.parametrize("stop, val_every", [
    (2, 2),   # last.pt written at step 2 inside epoch 0 (batch 2 of 3): resume mid-epoch
    (3, 0),   # last.pt written at the end of epoch 0 (validation per epoch): epoch boundary
])
@pytest.mark.slow
def test_resume_reaches_the_same_weights_as_an_uninterrupted_run(
        uninterrupted, tiny_tax, tmp_path, monkeypatch, stop, val_every):
    cfg = tiny_config(tiny_tax, tmp_path, optim={"steps": 5}, run={"val_every": val_every})
    interrupt_after(monkeypatch, stop)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg).fit()
    monkeypatch.undo()
    saved = checkpoint.load(tmp_path / "last.pt")
    assert saved["state"]["step"] == stop

    resumed = Trainer(dataclasses.replace(cfg, run=dataclasses.replace(
        cfg.run, resume=str(tmp_path / "last.pt"))))
    state = resumed.fit()
    assert state.step == 5
    assert_same_weights(weights(resumed.model), weights(uninterrupted.model))
    assert_same_weights(weights(resumed.ema), weights(uninterrupted.ema))
    assert resumed.optimizer.param_groups[0]["lr"] == uninterrupted.optimizer.param_groups[0]["lr"]
    # the coverage counts (and so the decoding plan) span the whole run, not the resumed part
    assert torch.equal(resumed.bench.coverage, uninterrupted.bench.coverage)
    assert resumed.decoding_plan() == uninterrupted.decoding_plan()
    # the losses logged after the resume are the uninterrupted run's, step for step
    losses = {r["step"]: r["loss"] for r in read_metrics(tmp_path) if "loss" in r}
    straight = {r["step"]: r["loss"] for r in read_metrics(Path(uninterrupted.cfg.run.output))
                if "loss" in r}
    assert losses == straight


def test_coverage_counts_are_no_buffer_ddp_could_overwrite_and_ride_in_the_checkpoint(
        uninterrupted):
    bench = uninterrupted.bench
    assert not any(b is bench.coverage for b in bench.buffers())      # DDP broadcasts buffers
    assert "coverage" not in bench.state_dict()
    saved = checkpoint.load(Path(uninterrupted.cfg.run.output) / "last.pt")
    assert torch.equal(saved["coverage"], bench.coverage) and bench.coverage.sum() > 0
    # the coarse-children rule is limited to the exhaustive parents
    assert bench.coarse_parents.tolist() == uninterrupted.taxset.super.exhaustive.tolist()


@pytest.mark.slow
def test_resume_with_data_loader_worker_processes_is_exact(tiny_tax, tmp_path, monkeypatch):
    # Two workers: each worker's augmentation stream is seeded from the loader's per-epoch
    # generator; resuming at step 2 (mid-epoch 0) must replay the same streams.
    def config(out: Path, **run) -> TrainConfig:
        return tiny_config(tiny_tax, out, data={"workers": 2}, optim={"steps": 4},
                           run={"val_every": 2, **run})

    straight = Trainer(config(tmp_path / "straight"))
    straight.fit()
    interrupt_after(monkeypatch, 2)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config(tmp_path / "cut")).fit()
    monkeypatch.undo()
    resumed = Trainer(config(tmp_path / "cut", resume=str(tmp_path / "cut" / "last.pt")))
    resumed.fit()
    assert_same_weights(weights(resumed.model), weights(straight.model))
    assert_same_weights(weights(resumed.ema), weights(straight.ema))


def test_resume_with_other_settings_warns_in_one_line_that_it_is_not_exact(
        uninterrupted, tiny_tax, tmp_path, capsys):
    # more steps stretch the cosine schedule: the first 5 steps' learning rates change
    last = Path(uninterrupted.cfg.run.output) / "last.pt"
    cfg = tiny_config(tiny_tax, tmp_path, optim={"steps": 8},
                      run={"resume": str(last), "val_every": 3})   # val_every: no effect on weights
    Trainer(cfg)
    lines = [x for x in capsys.readouterr().err.splitlines() if "resuming" in x]
    assert lines == [f"warning: {last}: resuming with other settings than the checkpoint's, so "
                     "the run will not continue exactly: optim.steps: 5 -> 8"]


# ---------------------------------------------------------------------------------------------
# checkpoints and run files


def test_checkpoint_holds_everything_needed_to_continue(uninterrupted):
    t = uninterrupted
    ckpt = checkpoint.load(Path(t.cfg.run.output) / "last.pt")
    assert {"model", "ema", "optimizer", "scheduler", "scaler", "state", "rng", "config",
            "taxonomies", "taxonomy_hash"} <= ckpt.keys()
    assert_same_weights(ckpt["model"], weights(t.model))
    assert_same_weights(ckpt["ema"], weights(t.ema))
    assert ckpt["state"]["step"] == 5 and ckpt["state"]["epoch"] == 1
    assert ckpt["state"]["batch_in_epoch"] == 2           # step 5 = batch 2 of epoch 1 (3 + 2)
    assert ckpt["scheduler"]["last_epoch"] == 5            # one scheduler step per optimizer step
    assert ckpt["optimizer"]["state"][0]["step"] == 5      # AdamW moments of 5 steps
    assert {"python", "numpy", "torch"} <= ckpt["rng"].keys()
    assert TrainConfig.from_dict(ckpt["config"]) == t.cfg
    assert ckpt["taxonomy_hash"] == t.taxset.hash
    assert supertax.TaxonomySet.from_dict(ckpt["taxonomies"]).hash == t.taxset.hash


def test_checkpoint_write_is_atomic_a_crash_keeps_the_previous_file(uninterrupted, monkeypatch):
    out = Path(uninterrupted.cfg.run.output)
    before = (out / "last.pt").read_bytes()

    def killed(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", killed)
    with pytest.raises(KeyboardInterrupt):
        uninterrupted.save("last.pt")
    assert (out / "last.pt").read_bytes() == before
    assert not [p.name for p in out.iterdir() if p.name.endswith(".tmp")]


def test_output_folder_has_config_hash_metrics_and_checkpoints(uninterrupted):
    t, out = uninterrupted, Path(uninterrupted.cfg.run.output)
    assert {"config.yaml", "taxonomy_hash.txt", "metrics.jsonl", "last.pt", "best.pt"} <= {
        p.name for p in out.iterdir()}
    assert TrainConfig.from_dict(yaml.safe_load((out / "config.yaml").read_text())) == t.cfg
    assert (out / "taxonomy_hash.txt").read_text().strip() == t.taxset.hash
    records = read_metrics(out)
    train = [r for r in records if "loss" in r]
    assert [r["step"] for r in train] == [1, 2, 3, 4, 5]    # log_every 1
    for r in train:
        assert {"class_loss", "box_loss", "lr", "images_per_s", "epoch"} <= r.keys()
        assert r["loss"] == pytest.approx(r["class_loss"] + 50.0 * r["box_loss"])  # box weight 50
    # the lr step s trained with: 0.01 * f(s - 1); warm-up f(0) = (0 + 1) / 1, then cosine
    # over 5 - 1 = 4 steps down to 0.01: f(i) = 0.01 + 0.99 * 0.5 * (1 + cos(pi * (i - 1) / 4))
    cosine = [0.01 + 0.99 * 0.5 * (1 + math.cos(math.pi * k / 4)) for k in range(4)]
    assert cosine == pytest.approx([1.0, 0.855018, 0.505, 0.154982], abs=1e-6)
    assert [r["lr"] for r in train] == pytest.approx([0.01 * f for f in [1.0] + cosine])
    val = [r for r in records if "val" in r]
    assert [r["step"] for r in val] == [2, 4, 5]            # val_every 2, and at the end
    for r in val:
        assert r["val"]["mode"] == "federated" and 0.0 <= r["val"]["AP"] <= 1.0
        assert set(r["val"]["per_taxonomy"]) == {"customer_a", "customer_b", "customer_c"}
    best = checkpoint.load(out / "best.pt")
    assert best["state"]["best_metric"] == max(r["val"]["AP"] for r in val)


def test_resume_from_a_checkpoint_of_other_classes_is_refused_naming_them(
        uninterrupted, tiny_tax, tmp_path):
    other = tmp_path / "taxonomies"
    other.mkdir()
    for src in tiny_tax.glob("*.yaml"):
        (other / src.name).write_text(src.read_text())
    driving = yaml.safe_load((other / "driving.yaml").read_text())
    driving["classes"].append({"name": "bicycle"})
    (other / "driving.yaml").write_text(yaml.safe_dump(driving, sort_keys=False))
    last = Path(uninterrupted.cfg.run.output) / "last.pt"
    with pytest.raises(checkpoint.CheckpointError) as err:
        Trainer(tiny_config(other, tmp_path / "run", run={"resume": str(last)}))
    assert str(last) in str(err.value) and "added ['bicycle']" in str(err.value)
    assert f"start a new run with --init-checkpoint {last}" in str(err.value)  # what to do


@pytest.mark.slow
def test_non_finite_loss_stops_naming_step_and_images_and_keeps_last_good_checkpoint(
        tiny_tax, tmp_path, monkeypatch):
    cfg = tiny_config(tiny_tax, tmp_path, optim={"steps": 5}, run={"val_every": 2})
    real, calls = bench_mod.masked_detection_loss, []

    def nan_at_step_3(*args, **kwargs):
        out = real(*args, **kwargs)
        calls.append(1)
        if len(calls) == 3:
            out["loss"] = out["loss"] * float("nan")
        return out

    monkeypatch.setattr(bench_mod, "masked_detection_loss", nan_at_step_3)
    t = Trainer(cfg)
    third_batch = list(t.data.train_loader(0))[2]           # step 3 = batch 3 of epoch 0
    ids = third_batch["image_id"].tolist()
    with pytest.raises(steps.NonFiniteLossError) as err:
        t.fit()
    msg = str(err.value)
    assert "non-finite loss nan at step 3" in msg and f"batch image ids: {ids}" in msg
    assert f"the last good checkpoint is {tmp_path / 'last.pt'} (step 2)" in msg
    kept = checkpoint.load(tmp_path / "last.pt")
    assert kept["state"]["step"] == 2
    assert all(torch.isfinite(v).all() for v in kept["model"].values() if v.is_floating_point())
    assert read_metrics(tmp_path)[-1]["error"].startswith("non-finite loss nan at step 3")


@pytest.mark.slow
def test_per_taxonomy_heads_train_through_the_trainer(tiny_tax, tmp_path):
    # 256 px: a head may get a single image of the batch, and batch norm in training needs more
    # than one value per channel; P7 is 256 / 2**7 = 2 x 2 here (1 x 1 at 128 px)
    t = Trainer(tiny_config(tiny_tax, tmp_path, model={"heads": "per-taxonomy", "image_size": 256},
                            optim={"steps": 1}))
    assert len(t.model.class_nets) == 3                      # one head pair per customer
    assert t.fit().step == 1 and (tmp_path / "last.pt").exists()
