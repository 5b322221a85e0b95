"""Checkpoints beyond their digest: never written or loaded with non-finite weights, an optional
HMAC key (``TAXDET_CHECKPOINT_KEY``) that refuses unsigned and forged files, and the messages for
older formats."""

from __future__ import annotations

import pytest
import torch

from taxdet.detection.engine import checkpoint_trust as trust
from taxdet.detection.engine import weights_file
from taxdet.detection.engine.weights_file import CheckpointError


def state(value: float = 1.0) -> dict:
    return {"model": {"w": torch.full((3,), value), "n": torch.tensor(3)},
            "ema": {"w": torch.ones(3)}, "config": {"a": 1}}


def forge(path, content: dict, **extra) -> None:
    """A file as ``save_atomic`` writes it, bypassing its checks (or re-signed by anyone)."""
    torch.save({**content, weights_file.FORMAT_KEY: weights_file.FORMAT,
                weights_file.DIGEST_KEY: weights_file.state_digest(content), **extra}, path)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_weights_are_never_written(tmp_path, bad):
    path = tmp_path / "last.pt"
    weights_file.save_atomic(state(), path)
    before = path.read_bytes()
    with pytest.raises(CheckpointError, match="not written: 1 weight tensor.*model.w"):
        weights_file.save_atomic(state(bad), path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]


@pytest.mark.parametrize("bare", [False, True])
def test_a_checkpoint_with_non_finite_weights_is_refused_on_load(tmp_path, bare):
    path = tmp_path / "nan.pt"
    if bare:
        torch.save({"w": torch.tensor([float("nan")])}, path)
    else:
        forge(path, state(float("nan")))
    with pytest.raises(CheckpointError, match="refused: 1 weight tensor.*NaN or infinity"):
        weights_file.load(path, bare=True)


def test_format_1_is_called_older_with_the_conversion(tmp_path):
    path = tmp_path / "old.pt"
    torch.save({**state(), weights_file.FORMAT_KEY: 1, weights_file.DIGEST_KEY: "x"}, path)
    with pytest.raises(CheckpointError, match="written by an older version") as exc:
        weights_file.load(path)
    assert "upgrade_checkpoint.py" in str(exc.value) and "newer" not in str(exc.value)


def test_with_the_key_set_checkpoints_are_signed_and_verified(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    monkeypatch.setenv(trust.KEY_ENV, "s3cret")
    weights_file.save_atomic(state(), path)
    assert weights_file.load(path)["config"] == {"a": 1}
    monkeypatch.setenv(trust.KEY_ENV, "another key")
    with pytest.raises(CheckpointError, match="signature does not match"):
        weights_file.load(path)
    monkeypatch.delenv(trust.KEY_ENV)
    assert weights_file.load(path)["config"] == {"a": 1}   # without the key: the digest only


def test_with_the_key_set_an_unsigned_or_re_signed_checkpoint_is_refused(tmp_path, monkeypatch):
    unsigned, forged = tmp_path / "unsigned.pt", tmp_path / "forged.pt"
    weights_file.save_atomic(state(), unsigned)              # written without a key
    forge(forged, state(2.0), **{trust.HMAC_KEY: "0" * 64})   # digest recomputed, MAC guessed
    monkeypatch.setenv(trust.KEY_ENV, "s3cret")
    with pytest.raises(CheckpointError, match="refused: not signed"):
        weights_file.load(unsigned)
    with pytest.raises(CheckpointError, match="signature does not match"):
        weights_file.load(forged)


def test_resume_takes_the_run_folder_from_where_the_checkpoint_lies(tmp_path, monkeypatch):
    from taxdet.detection.engine import checkpoint
    from taxdet.detection.model.detector_config import TrainConfig
    cfg = TrainConfig().to_dict()
    cfg["run"]["output"] = "/srv/victim"                       # recorded inside the file
    content = {k: {} for k in checkpoint.RESUME_KEYS}
    content.update(config=cfg, taxonomy_hash="x", model={"w": torch.ones(1)})
    (tmp_path / "run").mkdir()
    forge(tmp_path / "run" / "last.pt", content)
    tree = checkpoint.resumed_config(tmp_path / "run" / "last.pt", TrainConfig)
    assert tree["run"]["output"] == str(tmp_path / "run")
