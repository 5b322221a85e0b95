"""The decoding plan from the coverage counts: a column short of background negatives is
descendant-decoded, a childless one without any is excluded with a warning; training records
the plan in its checkpoints, validates with it, and warns at its start like the validator."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from taxdet.detection.engine import checkpoint
from taxdet.detection.model.hierarchy_scores import coverage_matrix
from taxdet.detection.prediction.predictor import load_predictor
from taxdet.detection.training import trainer as trainer_module
from taxdet.detection.training.coverage import (
    KINDS,
    decoding_plan,
    plan_lines,
    write_coverage,
)
from taxdet.detection.training.trainer import Trainer
from taxdet.supertax.validate import decoding_notes
from tests.factories import make_tiny_taxonomies, tiny_train_config

pytestmark = pytest.mark.usefixtures("one_thread")

NAMES = ["person", "pedestrian_adult", "pedestrian_child", "vehicle", "car", "truck",
         "traffic_light"]


def counts(background: list[float], positives: float = 50.0) -> np.ndarray:
    """Coverage counts [1, 6, 7]: every column ``positives`` positives, the given background
    negatives."""
    out = np.zeros((1, len(KINDS), 7))
    out[0, KINDS.index("positive")] = positives
    out[0, KINDS.index("background_negative")] = background
    return out


def test_a_column_with_positives_but_no_background_is_descendant_decoded(taxset):
    plan = decoding_plan(counts([1e6, 1e6, 1e6, 0, 1e6, 1e6, 1e6]), taxset.ancestors, NAMES)
    assert plan["descendant_decoded"] == ["vehicle"] and plan["excluded"] == []
    assert plan["median_background_negatives"] == 1e6 and plan["floor"] == 1e4


def test_a_column_below_the_floor_too_and_one_above_it_not(taxset):
    plan = decoding_plan(counts([9e3, 1e6, 1e6, 2e4, 1e6, 1e6, 1e6]), taxset.ancestors, NAMES)
    assert plan["descendant_decoded"] == ["person"]   # 9e3 < 1 % of 1e6; vehicle's 2e4 is not


def test_a_childless_column_without_background_is_excluded_with_a_warning(taxset):
    background = [1e6, 1e6, 1e6, 1e6, 1e6, 1e6, 0]
    plan = decoding_plan(counts(background), taxset.ancestors, NAMES)
    assert plan["descendant_decoded"] == [] and plan["excluded"] == ["traffic_light"]
    warnings, notes = plan_lines(plan, taxset.ancestors, NAMES)
    assert notes == []
    assert warnings == ["class 'traffic_light' got no background negative and has no trusted "
                        "descendant: its column never learned where it is absent, so it is "
                        "excluded from predictions (decoding plan in the checkpoints; --decoding "
                        "own or hierarchy predicts it)"]
    # a childless column with a few background negatives keeps its own score
    low = decoding_plan(counts([1e6] * 6 + [5]), taxset.ancestors, NAMES)
    assert low["excluded"] == [] and low["descendant_decoded"] == []


def test_a_parent_whose_children_are_all_untrusted_is_excluded(taxset):
    plan = decoding_plan(counts([1e6, 1e6, 1e6, 0, 0, 0, 1e6]), taxset.ancestors, NAMES)
    assert plan["descendant_decoded"] == [] and plan["excluded"] == ["vehicle", "car", "truck"]


def test_no_counts_no_plan_and_coverage_json_holds_the_plan(taxset, tmp_path):
    assert decoding_plan(np.zeros((2, len(KINDS), 7)), taxset.ancestors, NAMES) is None
    report, warnings = write_coverage(counts([1e6] * 3 + [0] + [1e6] * 2 + [0]), ["a"], NAMES,
                                      tmp_path, ancestors=np.asarray(taxset.ancestors))
    saved = json.loads((tmp_path / "coverage.json").read_text())
    assert saved["decoding_plan"] == report["decoding_plan"]
    assert saved["decoding_plan"]["descendant_decoded"] == ["vehicle"]
    assert saved["decoding_notes"][0].startswith("class 'vehicle' got fewer background "
                                                 "negatives than the floor")
    assert "(car, truck)" in saved["decoding_notes"][0]
    assert any("'traffic_light' got no background negative" in w for w in warnings)


@pytest.fixture(scope="module")
def nobody_labels_vehicle(tmp_path_factory):
    """The tiny driving world with customer_c's Vehicle label mapped to nothing: vehicle is a
    parent no customer labels (its children are customer_b's)."""
    folder = make_tiny_taxonomies(tmp_path_factory.mktemp("tiny"))
    path = folder / "customer_c.yaml"
    text = path.read_text()
    assert "maps_to: vehicle" in text
    path.write_text(text.replace("maps_to: vehicle", "maps_to: null"))
    return folder


@pytest.mark.slow
def test_training_records_the_plan_validates_with_it_and_warns_first(
        nobody_labels_vehicle, tmp_path, monkeypatch, capsys):
    used = []
    real = trainer_module.set_hierarchy_decoding

    def recording(predictor, taxset, option=None, plan=None):
        used.append(plan)
        return real(predictor, taxset, option, plan)

    monkeypatch.setattr(trainer_module, "set_hierarchy_decoding", recording)
    trainer = Trainer(tiny_train_config(nobody_labels_vehicle, tmp_path, optim={"steps": 6}))
    trainer.fit()
    err = capsys.readouterr().err
    taxset = trainer.taxset
    [note] = decoding_notes(taxset.super, taxset.taxonomies)   # the validator's text
    assert note.startswith("class 'vehicle' will get no background negative") and note in err

    plan = checkpoint.load(tmp_path / "last.pt")["decoding_plan"]
    assert plan == json.loads((tmp_path / "coverage.json").read_text())["decoding_plan"]
    assert plan["descendant_decoded"] == ["vehicle"] and plan["excluded"] == []
    assert used and used[-1] == plan                            # validation decoded with it
    predictor, _, _ = load_predictor(tmp_path / "last.pt")
    assert torch.equal(predictor.hierarchy,
                       torch.as_tensor(coverage_matrix(taxset.ancestors, taxset.names, plan)))
