"""Warm start across taxonomy changes (--init-checkpoint of other taxonomies): class-head columns
matched by name, per anchor; new classes fresh at the prior; refusals that say why.

Tiny data: the demo's 3 customers at 128 px (tests.factories); the checkpoint is an untrained D0
of the 7 driving classes (``make_checkpoint``), its weights perturbed everywhere.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from pathlib import Path

import pytest
import torch
import yaml

import taxdet.supertax as supertax
from taxdet.detection.engine import checkpoint
from taxdet.detection.model.build import create_model
from taxdet.detection.model.detector_config import TrainConfig
from taxdet.detection.training.trainer import Trainer
from taxdet.detection.training.warm_start import ClassMapping, class_output_keys, remap_columns
from tests.factories import make_checkpoint, make_tiny_taxonomies
from tests.factories import tiny_train_config as tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")

PRIOR = -math.log((1 - 0.01) / 0.01)  # effdet's class-bias initialisation, -4.595


@pytest.fixture(scope="module")
def tiny_tax(tmp_path_factory) -> Path:
    return make_tiny_taxonomies(tmp_path_factory.mktemp("warm"))


@pytest.fixture(scope="module")
def old_ckpt(tiny_tax, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("ckpt") / "old.pt"
    make_checkpoint(path, supertax.load([tiny_tax]))
    return path


def grown(tiny_tax: Path, folder: Path, new_class: str | None = None, drop: str | None = None
          ) -> Path:
    """The tiny taxonomies plus customer_d (customer_b's data and labels under another name),
    optionally a new super class that customer_d also labels, or without super class ``drop``."""
    shutil.copytree(tiny_tax, folder)
    sup = yaml.safe_load((folder / "driving.yaml").read_text())
    d = yaml.safe_load((folder / "customer_b.yaml").read_text())
    d["name"] = "customer_d"
    if new_class:
        sup["classes"].append({"name": new_class})
        d["labels"].append({"name": new_class.title(), "maps_to": new_class})
    if drop:
        sup["classes"] = [c for c in sup["classes"] if c["name"] != drop]
        for name in ("customer_c.yaml",):
            c = yaml.safe_load((folder / name).read_text())
            c["labels"] = [lab for lab in c["labels"] if lab["maps_to"] != drop]
            c["labels"].append({"name": "Traffic_light", "maps_to": None})
            (folder / name).write_text(yaml.safe_dump(c, sort_keys=False))
    (folder / "driving.yaml").write_text(yaml.safe_dump(sup, sort_keys=False))
    (folder / "customer_d.yaml").write_text(yaml.safe_dump(d, sort_keys=False))
    return folder


def warm(tax: Path, out: Path, ckpt: Path, **sections) -> Trainer:
    run = {"init_checkpoint": str(ckpt), **sections.pop("run", {})}
    return Trainer(tiny_config(tax, out, run=run, **sections))


def class_logits(model: torch.nn.Module, x: torch.Tensor, k: int) -> list[torch.Tensor]:
    """Per level [B, A, K, H, W]: channel a * K + k of the class output is anchor a, class k."""
    model.eval()
    with torch.no_grad():
        levels = model(x)[0]
    return [c.view(c.shape[0], -1, k, *c.shape[2:]) for c in levels]


# ---------------------------------------------------------------------------------------------
# the mapping and the per-anchor interleaving


def test_mapping_by_name_keeps_adds_and_drops():
    m = ClassMapping.by_name(["person", "car", "truck"], ["car", "bicycle", "person"])
    assert m.kept == [("car", 1, 0), ("person", 0, 2)]
    assert m.new == [("bicycle", 1)] and m.dropped == [("truck", 2)]
    assert not m.identity and ClassMapping.by_name(["a", "b"], ["a", "b"]).identity


def test_rows_are_moved_per_anchor_channel_a_times_k_plus_k():
    # 2 anchors; old K = 3 (p, c, t), new K = 2 (c, b): channel a * K + k
    old = torch.tensor([0., 1., 2., 10., 11., 12.])          # value = 10 * anchor + old column
    fresh = torch.full((4,), -9.0)
    m = ClassMapping.by_name(["p", "c", "t"], ["c", "b"])
    out = remap_columns(old, fresh, m, anchors=2)
    assert out.tolist() == [1.0, -9.0, 11.0, -9.0]             # c from old column 1; b fresh
    w = torch.arange(6.0)[:, None, None, None].expand(6, 2, 1, 1)  # [A*K, C, 1, 1] weights
    assert remap_columns(w, torch.zeros(4, 2, 1, 1), m, 2)[:, 0, 0, 0].tolist() == [1, 0, 4, 0]


# ---------------------------------------------------------------------------------------------
# through the trainer


def test_adding_a_customer_onto_existing_classes_is_a_plain_warm_start(
        tiny_tax, old_ckpt, tmp_path):
    # before: "taxonomy 'customer_d' is loaded now but not in the checkpoint" (refused)
    t = warm(grown(tiny_tax, tmp_path / "tax"), tmp_path / "run", old_ckpt)
    saved = checkpoint.load(old_ckpt)["model"]
    assert all(torch.equal(v, saved[k]) for k, v in t.model.state_dict().items())
    t.write_run_files()
    record = json.loads((tmp_path / "run" / "init_mapping.json").read_text())
    assert [r["class"] for r in record["kept"]] == t.taxset.names
    assert record["new"] == [] and record["dropped"] == []
    assert "taxonomy 'customer_d' is loaded now but not in the checkpoint" in \
        record["taxonomy_changes"]


@pytest.mark.slow
def test_a_customer_with_a_new_class_keeps_the_old_classes_predictions_before_training(
        tiny_tax, old_ckpt, tmp_path, capsys):
    t = warm(grown(tiny_tax, tmp_path / "tax", new_class="bicycle"), tmp_path / "run", old_ckpt)
    assert t.taxset.names[-1] == "bicycle" and t.taxset.num_classes == 8
    cfg = TrainConfig.from_dict(checkpoint.load(old_ckpt)["config"])
    old_model = create_model(cfg.model, 7)
    old_model.load_state_dict(checkpoint.load(old_ckpt)["model"])
    x = torch.randn(2, 3, 128, 128, generator=torch.Generator().manual_seed(0))
    for model in (t.model, t.ema.module):                   # the raw and the EMA weights
        for new, old in zip(class_logits(model, x, 8), class_logits(old_model, x, 7)):
            assert torch.equal(new[:, :, :7], old)          # the 7 old columns, every anchor
    bias = t.model.state_dict()[class_output_keys(t.model)[-1]].view(9, 8)   # [A, K]
    assert torch.allclose(bias[:, 7], torch.full((9,), PRIOR))       # bicycle: fresh, prior
    out = capsys.readouterr().err
    assert f"init-checkpoint {old_ckpt}: trained for other taxonomies" in out
    assert "new 1 (bicycle); dropped 0 (none)" in out


@pytest.mark.slow
def test_a_removed_class_is_dropped_and_the_rest_keep_their_rows(tiny_tax, old_ckpt, tmp_path):
    t = warm(grown(tiny_tax, tmp_path / "tax", drop="traffic_light"), tmp_path / "run", old_ckpt)
    assert t.init_mapping["dropped"] == [{"class": "traffic_light", "checkpoint_column": 6}]
    key = class_output_keys(t.model)[-1]
    old = checkpoint.load(old_ckpt)["model"][key].view(9, 7)
    assert torch.equal(t.model.state_dict()[key].view(9, 6), old[:, :6])


def test_other_anchors_are_refused_naming_the_box_head(tiny_tax, old_ckpt, tmp_path):
    with pytest.raises(checkpoint.CheckpointError) as err:
        warm(grown(tiny_tax, tmp_path / "tax", new_class="bicycle"), tmp_path / "run", old_ckpt,
             model={"num_scales": 2})
    assert str(err.value).startswith(f"{old_ckpt}: its box head has another shape")


def test_no_class_in_common_is_refused(tiny_tax, old_ckpt, tmp_path):
    folder = tmp_path / "tax"
    shutil.copytree(tiny_tax, folder)
    text = (folder / "driving.yaml").read_text()
    for name in ("person", "pedestrian_adult", "pedestrian_child", "vehicle", "car", "truck",
                 "traffic_light"):
        text = text.replace(f"name: {name}\n", f"name: x_{name}\n")
    (folder / "driving.yaml").write_text(text)
    for f in folder.glob("customer_*.yaml"):
        f.write_text(re.sub(r"maps_to: (?!null)", "maps_to: x_", f.read_text()))
    with pytest.raises(checkpoint.CheckpointError, match="no class matches by name"):
        warm(folder, tmp_path / "run", old_ckpt)


@pytest.mark.slow
def test_per_taxonomy_heads_are_refused_with_a_clear_message(tiny_tax, old_ckpt, tmp_path):
    with pytest.raises(checkpoint.CheckpointError, match="needs shared heads, and this run has "
                                                         "per-taxonomy heads"):
        warm(grown(tiny_tax, tmp_path / "tax"), tmp_path / "run", old_ckpt,
             model={"heads": "per-taxonomy"})
