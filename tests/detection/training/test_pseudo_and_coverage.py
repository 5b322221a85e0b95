"""Training with pseudo-labels from the EMA teacher, and the supervision coverage report."""

from __future__ import annotations

import json

import pytest
import torch

from taxdet.core.errors import ConfigError
from taxdet.detection.model import detector_wrappers as benches
from taxdet.detection.training.trainer import Trainer
from tests.factories import make_tiny_taxonomies, tiny_train_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_tax(tmp_path_factory):
    return make_tiny_taxonomies(tmp_path_factory.mktemp("tiny"))


@pytest.mark.slow
def test_teacher_pseudo_labels_from_its_start_step_and_coverage_counts_them(
        tiny_tax, tmp_path, monkeypatch, capsys):
    calls = []
    real = benches.teacher_class_probs

    def counting(teacher, images, num_classes):
        calls.append(images.shape[0])
        return real(teacher, images, num_classes).clamp(max=0.01)   # a sure "no" everywhere

    monkeypatch.setattr(benches, "teacher_class_probs", counting)
    cfg = tiny_train_config(tiny_tax, tmp_path, optim={"steps": 3},
                            pseudo={"enabled": True, "start_step": 1},
                            run={"progress": True})
    Trainer(cfg).fit()
    assert len(calls) == 2                                  # steps 2 and 3, not step 1
    report = json.loads((tmp_path / "coverage.json").read_text())
    assert set(report["taxonomies"]) == {"customer_a", "customer_b", "customer_c"}
    total = report["total"]
    assert sum(n["pseudo"] for n in total.values()) > 0
    # customer_a labels person only: its vehicle cells can only be pseudo-labels or certain
    # off-path negatives, never labeled positives
    assert report["taxonomies"]["customer_a"]["vehicle"]["positive"] == 0
    assert "supervision coverage" in capsys.readouterr().err


def test_coverage_without_pseudo_has_no_pseudo_cells_and_warns_about_untrained_columns(
        tiny_tax, tmp_path, capsys):
    Trainer(tiny_train_config(tiny_tax, tmp_path, optim={"steps": 1})).fit()
    report = json.loads((tmp_path / "coverage.json").read_text())
    assert all(n["pseudo"] == 0 for n in report["total"].values())
    assert all(n["negative"] > 0 for n in report["total"].values())
    silent = [c for c, n in report["total"].items() if n["positive"] == 0]
    err = capsys.readouterr().err
    assert all(f"class {c!r} got no positive" in err for c in silent)


def test_pseudo_labels_need_the_ema_teacher(tiny_tax, tmp_path):
    with pytest.raises(ConfigError, match=r"pseudo.enabled needs the EMA teacher"):
        tiny_train_config(tiny_tax, tmp_path, optim={"ema_decay": 0.0}, pseudo={"enabled": True})


@pytest.mark.slow
def test_fitted_schedule_waits_for_the_teachers_ap_and_refits_thresholds_at_validation(
        tiny_tax, tmp_path, monkeypatch):
    """start_ap: no teacher before a validation reached it; class_precision: thresholds fitted
    at every validation, one per column, saved in the checkpoint and restored on resume."""
    calls = []
    real = benches.teacher_class_probs
    monkeypatch.setattr(benches, "teacher_class_probs",
                        lambda *a: calls.append(1) or real(*a))
    pseudo = {"enabled": True, "start_step": 0, "start_ap": 0.99, "class_precision": 0.5}
    cfg = tiny_train_config(tiny_tax, tmp_path, optim={"steps": 2}, pseudo=pseudo,
                            run={"val_every": 1})
    trainer = Trainer(cfg)
    assert torch.isinf(trainer.bench.pseudo_thresholds).all()   # no pseudo-positive before a fit
    trainer.fit()
    assert calls == []                                   # a tiny model never reaches AP 0.99
    fitted = trainer.bench.pseudo_thresholds
    assert fitted is not None and fitted.shape == (trainer.taxset.num_classes,)
    saved = torch.load(tmp_path / "last.pt", weights_only=True)["pseudo_thresholds"]
    assert torch.equal(saved, fitted.cpu())
    reached = tiny_train_config(tiny_tax, tmp_path / "low", optim={"steps": 2},
                                pseudo={**pseudo, "start_ap": 1e-9}, run={"val_every": 1})
    monkeypatch.setattr(Trainer, "validate", lambda self: {"AP": 0.5})
    Trainer(reached).fit()
    assert len(calls) == 1                               # step 2, after step 1's validation
