"""``train.py --resume PATH`` restores the run: config, taxonomies, data and run folder come from
the checkpoint; options beside it override, with one clean warning line.

Tiny data: the demo's 3 customers at 128 px (11 images: 7 train, 4 val), D0, batch 2.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from taxdet.detection.engine import checkpoint
from taxdet.detection.training.cli_options import add_arguments, resolve
from taxdet.tools.train import main as train_main
from tests.factories import make_tiny_taxonomies, read_metrics

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_tax(tmp_path_factory) -> Path:
    return make_tiny_taxonomies(tmp_path_factory.mktemp("resume"))


def flags(tax: Path, out: Path, *extra: str) -> list[str]:
    return ["--taxonomies", str(tax), "--output", str(out), "--image-size", "128",
            "--batch-size", "2", "--workers", "0", "--device", "cpu", "--optim.warmup_steps", "1",
            "--lr", "0.01", "--run.log_every", "1", "--run.progress", "false", *extra]


def parse(argv: list[str]):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return resolve(parser.parse_args(argv))


@pytest.fixture(scope="module")
def two_steps(tiny_tax, tmp_path_factory) -> Path:
    """A finished 2-step run; returns its folder."""
    out = tmp_path_factory.mktemp("exp1")
    assert train_main(flags(tiny_tax, out, "--steps", "2", "--overwrite")) == 0
    return out


@pytest.mark.slow
def test_resume_alone_takes_config_taxonomies_and_folder_from_the_checkpoint(two_steps, tiny_tax):
    cfg = parse(["--resume", str(two_steps / "last.pt")])
    saved = checkpoint.load(two_steps / "last.pt")["config"]
    assert cfg.data.taxonomies == [str(tiny_tax)]          # not the default demo taxonomies
    assert cfg.run.output == str(two_steps) and cfg.run.resume == str(two_steps / "last.pt")
    assert cfg.optim.steps == 2 and cfg.model.image_size == 128
    assert cfg.optim.lr == saved["optim"]["lr"] == 0.01


def test_options_beside_resume_override_the_checkpoint(two_steps):
    cfg = parse(["--resume", str(two_steps / "last.pt"), "--steps", "5", "--val-every", "3"])
    assert (cfg.optim.steps, cfg.run.val_every, cfg.optim.batch_size) == (5, 3, 2)


@pytest.mark.slow
def test_resume_path_continues_the_run_with_one_clean_warning_line(
        two_steps, run_tool, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)          # no taxonomies/driving here: nothing falls back to it
    last = two_steps / "last.pt"
    code, out, err = run_tool("train", "--resume", last, "--steps", "3")
    assert code == 0, err
    assert out.startswith("trained 3 steps")
    warning = [x for x in err.splitlines() if "resuming" in x]
    assert warning == [f"warning: {last}: resuming with other settings than the checkpoint's, "
                       "so the run will not continue exactly: optim.steps: 2 -> 3"]
    assert "UserWarning" not in err and "warnings.warn" not in err
    assert [r["step"] for r in read_metrics(two_steps) if "loss" in r] == [1, 2, 3]
    assert checkpoint.load(last)["state"]["step"] == 3


@pytest.mark.slow
def test_resume_of_a_run_on_a_prepared_super_json_reads_it_again(tiny_tax, tmp_path, run_tool):
    import taxdet.supertax as supertax
    from taxdet.datasets import MergeConfig, merge
    data = tmp_path / "super.json"
    merge(supertax.load([tiny_tax]), MergeConfig())[0].write(data)
    out = tmp_path / "run"
    assert run_tool("train", *flags(tiny_tax, out, "--data", data, "--steps", "1"))[0] == 0
    cfg = parse(["--resume", str(out / "last.pt")])
    assert cfg.data.super_json == str(data)
