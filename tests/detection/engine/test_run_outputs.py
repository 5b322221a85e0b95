"""The engine's run outputs: ``curves.png`` at the end of every run, TensorBoard event files
unless switched off, and the task-neutral ``best_metric`` (old checkpoints' ``best_ap`` read)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from taxdet.detection.engine.trainer_base import TrainState
from taxdet.detection.training.cli_options import add_arguments, resolve
from taxdet.detection.training.trainer import Trainer
from tests.factories import make_tiny_taxonomies
from tests.factories import tiny_train_config as tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

PNG = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def tiny_tax(tmp_path_factory) -> Path:
    return make_tiny_taxonomies(tmp_path_factory.mktemp("tiny"))


def event_files(run: Path) -> list[Path]:
    return sorted((run / "tensorboard").glob("events.out.tfevents.*"))


def test_a_two_step_run_writes_curves_and_tensorboard_events(tiny_tax, tmp_path):
    t = Trainer(tiny_config(tiny_tax, tmp_path, optim={"steps": 2}))
    t.fit()
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG
    assert event_files(tmp_path)
    assert t.state.metric == "AP" and t.state.best_metric == t.state.history[-1]["AP"]


def test_tensorboard_switched_off_still_writes_curves(tiny_tax, tmp_path):
    Trainer(tiny_config(tiny_tax, tmp_path, optim={"steps": 2},
                        run={"tensorboard": False})).fit()
    assert (tmp_path / "curves.png").read_bytes()[:8] == PNG
    assert not (tmp_path / "tensorboard").exists()


def test_no_tensorboard_flag_sets_the_run_setting():
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    assert resolve(parser.parse_args(["--no-tensorboard"])).run.tensorboard is False
    assert resolve(parser.parse_args([])).run.tensorboard is True


def test_old_checkpoints_best_ap_is_read_as_best_metric():
    old = {"step": 5, "epoch": 1, "batch_in_epoch": 2, "best_ap": 0.25,
           "history": [{"step": 5, "AP": 0.25}], "train_seconds": 1.5}
    state = TrainState.from_dict(old)
    assert state.best_metric == 0.25 and state.step == 5 and state.metric == ""
    assert "best_ap" not in vars(state)
