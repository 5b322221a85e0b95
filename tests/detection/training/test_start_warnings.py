"""What a run says at its start: a warm-up longer than the run (clamped), classes no training box
teaches, and "did you mean" for unknown config keys and flags."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest

import taxdet.supertax as supertax
from taxdet.core.errors import ConfigError
from taxdet.datasets.sample import Sample
from taxdet.detection.engine.train_step import effective_warmup
from taxdet.detection.training.cli_options import add_arguments, parse_args, resolve
from taxdet.detection.training.train_data import warn_empty_classes
from taxdet.detection.training.trainer import Trainer
from tests.factories import make_tiny_taxonomies, read_metrics
from tests.factories import tiny_train_config as tiny_config
from tests.paths import DRIVING

pytestmark = pytest.mark.usefixtures("one_thread")


# ---------------------------------------------------------------------------------------------
# warm-up


@pytest.mark.parametrize("warmup, total, used, says", [
    (100, 4, 1, "would peak at 4e-05 instead of 0.001; warming up over 1 step(s)"),  # 4 // 4
    (100, 3, 0, "warming up over 0 step(s)"),                  # 3 // 4: the peak from step 1
    (4, 4, 1, "optim.warmup_steps 4 >= the run's 4 steps"),
    (3, 4, 3, "takes more than half of the run's 4 steps"),   # kept, with a warning
    (2, 4, 2, None),                                           # half the run: fine
    (100, 1000, 100, None),
])
def test_a_warm_up_as_long_as_the_run_becomes_a_quarter_of_it(warmup, total, used, says):
    steps, warning = effective_warmup(warmup, total, lr=1e-3)
    assert steps == used
    assert (warning is None) if says is None else (says in warning)


@pytest.fixture(scope="module")
def tiny_tax(tmp_path_factory) -> Path:
    return make_tiny_taxonomies(tmp_path_factory.mktemp("warn"))


@pytest.mark.slow
def test_a_short_run_reaches_the_peak_rate_and_says_why(tiny_tax, tmp_path, capsys):
    t = Trainer(tiny_config(tiny_tax, tmp_path, optim={"steps": 4, "warmup_steps": 100}))
    t.fit()
    err = capsys.readouterr().err
    assert "warning: optim.warmup_steps 100 >= the run's 4 steps: the learning rate would peak " \
           "at 0.0004 instead of 0.01" in err                # lr 0.01 x 4 / 100
    lrs = [r["lr"] for r in read_metrics(tmp_path) if "loss" in r]
    assert lrs[0] == pytest.approx(0.01)                     # warm-up of 4 // 4 = 1 step: (0+1)/1


# ---------------------------------------------------------------------------------------------
# classes without training boxes


def boxes_of(*columns: int) -> Sample:
    n = len(columns)
    return Sample(1, "x.png", 64, 64, "customer_b", np.ones(7, bool),
                  np.tile(np.float32([1, 1, 9, 9]), (n, 1)), np.array(columns, np.int64),
                  np.ones(n, np.float32))


def test_classes_that_no_training_box_teaches_are_named(capsys):
    taxset = supertax.load([DRIVING])
    # columns: person 0, pedestrian_adult 1, pedestrian_child 2, vehicle 3, car 4, truck 5,
    # traffic_light 6; a car box is also a positive of its ancestor vehicle
    empty = warn_empty_classes([boxes_of(1, 4), boxes_of(4)], taxset)
    assert empty == ["pedestrian_child", "truck", "traffic_light"]
    err = capsys.readouterr().err
    assert err.startswith("warning: no box in the training split (2 images) teaches class(es) "
                          "'pedestrian_child', 'truck', 'traffic_light'")
    assert warn_empty_classes([boxes_of(0, 1, 2, 3, 4, 5, 6)], taxset) == []
    assert capsys.readouterr().err == ""


# ---------------------------------------------------------------------------------------------
# did you mean


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="train.py")
    add_arguments(p)
    return p


@pytest.mark.parametrize("text, hint", [
    ("optim: {warmup_step: 5}\n", "did you mean 'warmup_steps'?"),
    ("optim: {WarmUp_Steps: 5}\n", "did you mean 'warmup_steps'?"),       # case-insensitive
    ("lr: 0.01\n", "did you mean 'optim.lr'?"),                           # a field at the top
    ("optimiser: {lr: 0.1}\n", "did you mean 'optim'?"),
])
def test_unknown_config_keys_suggest_the_closest_known_one(tmp_path, text, hint):
    path = tmp_path / "exp.yaml"
    path.write_text(text)
    with pytest.raises(ValueError) as err:
        resolve(parse_args(parser(), ["--config", str(path)]))
    assert "unknown key(s)" in str(err.value) and hint in str(err.value)


@pytest.mark.parametrize("flag, hint", [
    ("--optim.warmup-steps", "did you mean '--optim.warmup_steps'?"),
    ("--LR", "did you mean '--lr'?"),
    ("--optim.lr=0.1x", None),                             # a known flag: argparse's own error
])
def test_unknown_flags_suggest_the_closest_known_one(flag, hint, capsys):
    with pytest.raises(SystemExit) as exit_:
        parse_args(parser(), [flag, "5"] if "=" not in flag else [flag])
    assert exit_.value.code == 2
    err = capsys.readouterr().err
    if hint:
        assert f"unrecognized arguments: {flag} 5; {hint}" in err
    else:
        assert "unrecognized" not in err and "expected float" in err


def test_a_training_split_smaller_than_one_batch_is_refused_not_looped_forever(tiny_tax, tmp_path):
    with pytest.raises(ConfigError, match=r"training split has 7 images .* fewer than one batch "
                                          r"\(optim.batch_size 8\)"):
        Trainer(tiny_config(tiny_tax, tmp_path, optim={"batch_size": 8}))
