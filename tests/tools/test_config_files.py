"""--config given several times (train.py, train_classifier.py): merged in order, a later
file's keys win, flags win over both; every file recorded in run.config_files."""

from __future__ import annotations

import pytest

from taxdet.detection.classification.classifier_config import CLASSIFIER
from taxdet.detection.engine import command_line
from taxdet.detection.training.cli_options import parse_args, resolve
from taxdet.tools import train


def _write(tmp_path, name, text):
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


def test_configs_merge_in_order_and_are_recorded(tmp_path):
    a = _write(tmp_path, "a.yaml", "optim: {lr: 0.02, steps: 7}\nmodel: {image_size: 256}\n")
    b = _write(tmp_path, "b.yaml", "optim: {lr: 0.05}\nrun: {seed: 3}\n")
    cfg = resolve(parse_args(train.build_parser(), ["--config", a, "--config", b]))
    assert (cfg.optim.lr, cfg.optim.steps, cfg.model.image_size, cfg.run.seed) == (
        0.05, 7, 256, 3)
    assert cfg.run.config_files == [a, b]
    flipped = resolve(parse_args(train.build_parser(), ["--config", b, "--config", a,
                                                         "--seed", "5"]))
    assert (flipped.optim.lr, flipped.run.seed) == (0.02, 5)
    assert flipped.run.config_files == [b, a]
    assert resolve(parse_args(train.build_parser(), [])).run.config_files == []


def test_the_classifier_merges_them_too(tmp_path):
    a = _write(tmp_path, "a.yaml", "optim: {lr: 0.02, steps: 7}\n")
    b = _write(tmp_path, "b.yaml", "optim: {steps: 9}\n")
    parser = command_line.training_parser("train_classifier.py", "", "", CLASSIFIER)
    cfg = command_line.resolve(parser.parse_args(["--config", a, "--config", b]), CLASSIFIER)
    assert (cfg.optim.lr, cfg.optim.steps, cfg.run.config_files) == (0.02, 9, [a, b])


def test_a_bad_file_among_them_is_named(tmp_path):
    a = _write(tmp_path, "a.yaml", "optim: {lr: 0.02}\n")
    b = _write(tmp_path, "b.yaml", "- not a mapping\n")
    with pytest.raises(Exception, match="b.yaml: expected a mapping"):
        resolve(parse_args(train.build_parser(), ["--config", a, "--config", b]))
