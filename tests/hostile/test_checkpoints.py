"""Hostile checkpoints: files whose unpickling runs code, damaged, truncated, foreign or old ones.

Every path that reads a checkpoint or weight file (``checkpoint.load``, ``--resume``,
``--init-checkpoint``, ``--pretrained-backbone``, ``evaluate.py --checkpoint``,
``load_predictor``, ``create_model``, ``upgrade_checkpoint.py`` without ``--trust``) must refuse
with exit 1 / ``CheckpointError`` naming the file, never run the payload (its marker file never
appears) and leave the disk as it was.
"""

from __future__ import annotations

import os
import pickle
import random
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

import taxdet.supertax as supertax
from taxdet.detection.engine import checkpoint
from taxdet.detection.engine.checkpoint import CheckpointError
from taxdet.detection.model.build import ModelConfig, create_model
from taxdet.detection.prediction.predictor import load_predictor
from taxdet.detection.training.trainer import Trainer
from taxdet.tools.train import main as train_main
from tests.detection.training.test_checkpoint import flip_byte
from tests.factories import make_checkpoint, make_tiny_taxonomies
from tests.factories import tiny_train_config as tiny_config
from tests.paths import DRIVING

pytestmark = pytest.mark.usefixtures("one_thread")


class WriteFile:
    """Unpickling this calls ``Path(marker).write_text("pwned")``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return Path.write_text, (self.marker, "pwned")


class Shell:
    """Unpickling this runs ``touch <marker>`` in a shell."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f"touch '{self.marker}'",)


def write_payload(path: Path, kind: str, marker: Path) -> Path:
    """A malicious file: ``torch`` a checkpoint-shaped torch.save whose RNG state runs code,
    ``torch-top`` a torch.save of the payload itself, ``shell`` a torch.save running a shell
    command, ``pickle`` a plain pickle."""
    if kind == "pickle":
        path.write_bytes(pickle.dumps({"model": {}, "rng": WriteFile(marker)}))
    elif kind == "torch-top":
        torch.save(WriteFile(marker), path)
    else:
        payload = Shell(marker) if kind == "shell" else WriteFile(marker)
        torch.save({"model": {"w": torch.zeros(2)}, "rng": {"numpy": payload},
                    "state": {"step": 1}}, path)
    return path


KINDS = ["torch", "torch-top", "shell", "pickle"]


@pytest.fixture(scope="module")
def tiny_tax(tmp_path_factory) -> Path:
    return make_tiny_taxonomies(tmp_path_factory.mktemp("ckpt_tax"))


@pytest.fixture
def evil(tmp_path, request):
    """(malicious file, its marker) in a fresh folder; the marker must never appear."""
    marker = tmp_path / "pwned.txt"
    path = write_payload(tmp_path / "evil.pt", request.param, marker)
    yield path, marker
    assert not marker.exists(), "the payload ran"


def train_flags(tax: Path, out: Path, *extra) -> list[str]:
    return ["--taxonomies", tax, "--output", out, "--image-size", "128", "--batch-size", "2",
            "--workers", "0", "--device", "cpu", "--optim.warmup_steps", "1",
            "--run.progress", "false", *extra]


def assert_refused(result, path: Path, marker: Path, *fragments: str) -> None:
    code, out, err = result
    assert code == 1, (out, err)
    assert err.startswith("error: ") and str(path) in err, err
    assert "Traceback" not in err
    assert all(f in err for f in fragments), err
    assert not marker.exists(), "the payload ran"


# ---------------------------------------------------------------------------------------------
# the payloads are real: an unsafe load runs them


@pytest.mark.parametrize("kind", KINDS)
def test_the_payloads_run_when_loaded_unsafely(tmp_path, kind):
    marker = tmp_path / "pwned.txt"
    path = write_payload(tmp_path / "evil.pt", kind, marker)
    if kind == "pickle":
        pickle.loads(path.read_bytes())
    else:
        torch.load(path, weights_only=False)  # what this toolkit never does with a user's file
    assert marker.exists()


# ---------------------------------------------------------------------------------------------
# every loading path refuses them


@pytest.mark.parametrize("evil", KINDS, indirect=True)
def test_checkpoint_load_refuses(evil):
    path, marker = evil
    for bare in (False, True):
        with pytest.raises(CheckpointError, match=str(path)):
            checkpoint.load(path, bare=bare)


@pytest.mark.parametrize("evil", KINDS, indirect=True)
def test_train_resume_refuses(evil, tiny_tax, run_tool, snapshot):
    path, marker = evil
    snap = snapshot(path.parent)
    assert_refused(run_tool("train", *train_flags(tiny_tax, path.parent / "run", "--resume",
                                                  path)), path, marker)
    snap.unchanged()


@pytest.mark.parametrize("evil", KINDS, indirect=True)
def test_train_init_checkpoint_refuses(evil, tiny_tax, run_tool, snapshot):
    path, marker = evil
    snap = snapshot(path.parent)
    assert_refused(run_tool("train", *train_flags(tiny_tax, path.parent / "run",
                                                  "--init-checkpoint", path)), path, marker)
    snap.unchanged()


@pytest.mark.parametrize("evil", ["torch", "pickle"], indirect=True)
def test_train_pretrained_backbone_refuses(evil, tiny_tax, run_tool, snapshot):
    path, marker = evil
    snap = snapshot(path.parent)
    assert_refused(run_tool("train", *train_flags(tiny_tax, path.parent / "run",
                                                  "--pretrained-backbone", path)), path, marker)
    snap.unchanged()


@pytest.mark.parametrize("evil", KINDS, indirect=True)
def test_evaluate_checkpoint_refuses(evil, tiny_tax, run_tool, snapshot):
    path, marker = evil
    gt = tiny_tax.parent / "demo" / "test" / "annotations.json"
    snap = snapshot(path.parent)
    assert_refused(run_tool("evaluate", "--gt", gt, "--checkpoint", path, "--device", "cpu",
                            "--workers", "0"), path, marker)
    snap.unchanged()


@pytest.mark.parametrize("evil", KINDS, indirect=True)
def test_load_predictor_refuses(evil):
    path, marker = evil
    with pytest.raises(CheckpointError, match=str(path)):
        load_predictor(path)


@pytest.mark.parametrize("evil", KINDS, indirect=True)
def test_create_model_refuses_a_malicious_backbone_file(evil):
    path, marker = evil
    with pytest.raises(CheckpointError, match=str(path)):
        create_model(ModelConfig("efficientdet_d0", image_size=128,
                                 pretrained_backbone=str(path)), 7)


@pytest.mark.parametrize("evil", KINDS, indirect=True)
def test_upgrade_without_trust_refuses(evil, run_tool, snapshot):
    path, marker = evil
    snap = snapshot(path.parent)
    assert_refused(run_tool("upgrade_checkpoint", path, path.parent / "new.pt"), path, marker)
    snap.unchanged()


def test_upgrade_without_trust_says_to_trust_only_known_files(tmp_path, run_tool):
    path = write_payload(tmp_path / "evil.pt", "torch", tmp_path / "pwned.txt")
    code, _, err = run_tool("upgrade_checkpoint", path, tmp_path / "new.pt")
    assert code == 1 and "could run code" in err and "--trust" in err
    assert not (tmp_path / "pwned.txt").exists() and not (tmp_path / "new.pt").exists()


# ---------------------------------------------------------------------------------------------
# damaged, truncated, foreign and wrong-shaped files


@pytest.fixture(scope="module")
def good_ckpt(tmp_path_factory) -> Path:
    """A real (untrained) checkpoint with its digest."""
    path = tmp_path_factory.mktemp("good") / "last.pt"
    make_checkpoint(path, supertax.load([DRIVING]))
    return path


def damaged(good: Path, folder: Path, how: str) -> Path:
    path = folder / f"{how}.pt"
    data = good.read_bytes()
    if how == "flipped":
        shutil.copy(good, path)
        flip_byte(path)
    elif how == "truncated":
        path.write_bytes(data[:len(data) // 2])
    elif how == "png":
        path.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    elif how == "empty":
        path.write_bytes(b"")
    elif how == "zip-not-torch":
        with zipfile.ZipFile(path, "w") as z:
            z.writestr("readme.txt", "hello")
    return path


DAMAGE = {"flipped": "checksum mismatch", "truncated": "not a readable checkpoint",
          "png": "not a readable checkpoint", "empty": "not a readable checkpoint",
          "zip-not-torch": "not a readable checkpoint"}


@pytest.mark.parametrize("how", list(DAMAGE))
def test_evaluate_refuses_damaged_files(good_ckpt, tiny_tax, tmp_path, run_tool, how):
    path = damaged(good_ckpt, tmp_path, how)
    gt = tiny_tax.parent / "demo" / "test" / "annotations.json"
    assert_refused(run_tool("evaluate", "--gt", gt, "--checkpoint", path, "--device", "cpu"),
                   path, tmp_path / "none", DAMAGE[how])


@pytest.mark.parametrize("how", ["flipped", "truncated"])
def test_resume_and_init_refuse_damaged_files(good_ckpt, tiny_tax, tmp_path, run_tool, how):
    path = damaged(good_ckpt, tmp_path, how)
    for flag in ("--resume", "--init-checkpoint"):
        assert_refused(run_tool("train", *train_flags(tiny_tax, tmp_path / "run", flag, path)),
                       path, tmp_path / "none", DAMAGE[how])


def test_resume_from_a_list_is_refused(tiny_tax, tmp_path, run_tool):
    path = tmp_path / "list.pt"
    torch.save([1, 2, 3], path)
    assert_refused(run_tool("train", *train_flags(tiny_tax, tmp_path / "run", "--resume", path)),
                   path, tmp_path / "none", "holds a list, not a checkpoint")


def test_resume_from_bare_weights_is_refused(good_ckpt, tiny_tax, tmp_path, run_tool):
    path = tmp_path / "weights.pt"
    torch.save(checkpoint.load(good_ckpt)["model"], path)
    assert_refused(run_tool("train", *train_flags(tiny_tax, tmp_path / "run", "--resume", path)),
                   path, tmp_path / "none", "not a training checkpoint (missing")


def test_init_checkpoint_that_fits_no_layer_is_refused(tiny_tax, tmp_path, run_tool):
    path = tmp_path / "foreign.pt"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    assert_refused(run_tool("train", *train_flags(tiny_tax, tmp_path / "run",
                                                  "--init-checkpoint", path)),
                   path, tmp_path / "none", "do not fit efficientdet_d0",
                   "1 unexpected, e.g. ['fc.weight']")


def test_init_checkpoint_accepts_bare_effdet_weights(good_ckpt, tiny_tax, tmp_path):
    """A state dict without digest is fine for --init-checkpoint (still a safe load)."""
    weights = checkpoint.load(good_ckpt)["model"]
    torch.save(weights, tmp_path / "effdet.pth")
    t = Trainer(tiny_config(tiny_tax, tmp_path / "run",
                            run={"init_checkpoint": str(tmp_path / "effdet.pth")}))
    assert all(torch.equal(v, weights[k]) for k, v in t.model.state_dict().items())


# ---------------------------------------------------------------------------------------------
# old checkpoints: refused with the conversion command; converted only with --trust


@pytest.fixture(scope="module")
def old_run(tiny_tax, tmp_path_factory):
    """A 2-step run whose last.pt is rewritten as an older version wrote it (pickled python
    and numpy RNG states, no digest) into ``old.pt``; a stale temp file of a killed checkpoint
    write was left in the folder before the run started."""
    out = tmp_path_factory.mktemp("old_run") / "run"
    out.mkdir()
    (out / ".last.pt.k1ll3d.tmp").write_bytes(bytes(1000))
    assert train_main([str(a) for a in train_flags(tiny_tax, out, "--steps", "2")]) == 0
    new = checkpoint.load(out / "last.pt")
    checkpoint.set_rng_state(new["rng"])
    old = {**new, "rng": {"python": random.getstate(), "numpy": np.random.get_state(),
                          "torch": new["rng"]["torch"], "cuda": []}}
    torch.save(old, out / "old.pt")
    return out, new


def test_a_killed_checkpoint_writes_temp_file_is_removed_when_a_run_starts(old_run):
    out, _ = old_run
    assert not list(out.glob(".*.tmp"))


def test_an_old_checkpoint_is_refused_with_the_conversion_command(old_run, tiny_tax, run_tool):
    out, _ = old_run
    code, _, err = run_tool("train", *train_flags(tiny_tax, out, "--resume", out / "old.pt"))
    assert code == 1 and "Traceback" not in err
    assert f"{out / 'old.pt'}: refused" in err
    assert f"python tools/upgrade_checkpoint.py {out / 'old.pt'} NEW.pt --trust" in err


def test_upgrade_with_trust_converts_and_the_run_resumes(old_run, tiny_tax, run_tool):
    out, new = old_run
    upgraded = out / "upgraded.pt"
    code, printed, err = run_tool("upgrade_checkpoint", out / "old.pt", upgraded, "--trust")
    assert code == 0, err
    assert f"wrote {upgraded}" in printed
    got = checkpoint.load(upgraded)
    assert checkpoint.state_digest(got) == checkpoint.state_digest(new)  # the same state, bit
    # every part of the state (optimizer, schedule, RNGs...) loads: the 2-step run is complete
    code, printed, err = run_tool("train", *train_flags(tiny_tax, out, "--steps", "2",
                                                        "--resume", upgraded))
    assert code == 0, err
    assert printed.startswith("trained 2 steps")


@pytest.mark.parametrize("target", ["exists", "same"])
def test_upgrade_never_overwrites(old_run, run_tool, tmp_path, target):
    out, _ = old_run
    old = out / "old.pt"
    new = old if target == "same" else tmp_path / "new.pt"
    if target == "exists":
        new.write_bytes(b"keep me")
    before = old.read_bytes()
    code, _, err = run_tool("upgrade_checkpoint", old, new, "--trust")
    assert code == 1 and err.startswith(f"error: {new}: ")
    assert old.read_bytes() == before
    assert target == "same" or new.read_bytes() == b"keep me"
