"""Builders of tiny inputs shared by the training, prediction and tool tests: generated demo
data, copies of the driving taxonomies pointing at it, untrained checkpoints; and a run's
metrics file read back."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from timm.utils import ModelEmaV3

import taxdet.supertax as supertax
from taxdet.datasets.demo import DemoConfig, copy_taxonomies, generate_demo
from taxdet.datasets.demo_classification import generate_crops
from taxdet.detection.engine.checkpoint import save_atomic
from taxdet.detection.model.build import ModelConfig, create_model
from taxdet.detection.model.detector_config import TrainConfig
from tests.paths import DRIVING

TINY_SIZE = 128  # image size of the tiny demos, models and checkpoints


def make_tiny_taxonomies(root: Path, images_per_customer: int = 4) -> Path:
    """Generate a demo dataset under ``root/demo`` (128 px images) and copies of the driving
    taxonomy YAMLs in ``root/taxonomies`` whose ``data:`` point at it. Returns that folder."""
    generate_demo(root / "demo", supertax.load([DRIVING]),
                  DemoConfig(images_per_customer=images_per_customer, test_images=2,
                             image_size=TINY_SIZE))
    demo = root / "demo"
    return copy_taxonomies(DRIVING, root / "taxonomies", lambda name: [
        {"annotations": str(demo / name / "annotations.json"),
         "images": str(demo / name / "images")}])


def make_tiny_classification(root: Path, scenes: int = 3, crop_size: int = 32) -> Path:
    """Generate the demo's classification world (``crop_size`` px crops of ``scenes`` scenes
    per customer) under ``root/crops`` and copies of the driving taxonomy YAMLs in
    ``root/taxonomies`` whose ``data:`` is it. Returns that folder."""
    generate_crops(root / "crops", supertax.load([DRIVING]),
                   DemoConfig(images_per_customer=scenes), crop_size)
    return copy_taxonomies(DRIVING, root / "taxonomies", lambda name: [
        {"classification": str(root / "crops" / name)}])


def make_checkpoint(path: Path, taxset, seed: int = 0) -> dict:
    """A checkpoint-shaped dict from a fresh D0 at 128 px (no training): the raw weights are
    the EMA's plus noise, so the two differ everywhere. Returns the saved dict."""
    torch.manual_seed(seed)
    cfg = TrainConfig(model=ModelConfig("efficientdet_d0", image_size=TINY_SIZE))
    model = create_model(cfg.model, taxset.num_classes)
    ema = ModelEmaV3(model, decay=0.9)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.05 * torch.randn_like(p))
    state = {"model": model.state_dict(), "ema": ema.state_dict(), "config": cfg.to_dict(),
             "taxonomies": taxset.to_dict(), "taxonomy_hash": taxset.hash, "step": 0}
    save_atomic(state, path)
    return state


def make_demo(out: Path, taxset, image_size: int = TINY_SIZE) -> Path:
    """Tiny demo dataset (4 images per customer, 4 test images); returns its folder."""
    generate_demo(out, taxset, DemoConfig(images_per_customer=4, test_images=4,
                                          image_size=image_size, image_format="png"))
    return out


def read_metrics(folder: Path) -> list[dict]:
    """The records of a run's ``metrics.jsonl``, in order."""
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def tiny_train_config(taxonomies: Path, output: Path, **sections):
    """A ``TrainConfig`` that trains in seconds on CPU (D0 at 128 px, batch 2, 4 steps);
    ``sections`` override fields, e.g. ``optim={"steps": 1}``."""
    base = {"model": {"image_size": 128},
            "data": {"taxonomies": [str(taxonomies)], "workers": 0},
            "optim": {"batch_size": 2, "steps": 4, "warmup_steps": 1, "lr": 0.01, "ema_decay": 0.9},
            "run": {"output": str(output), "device": "cpu", "progress": False, "log_every": 1}}
    for section, values in sections.items():
        base.setdefault(section, {}).update(values)
    return TrainConfig.from_dict(base)
