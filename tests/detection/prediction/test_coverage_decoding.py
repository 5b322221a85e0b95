"""Coverage decoding in torch (``PredictBench``, ``load_predictor``): a column the decoding plan
does not trust is scored from its descendants only or never predicted; a trusted column keeps
its score; a checkpoint without a plan decodes as before (hierarchy)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taxdet.core.errors import ConfigError
from taxdet.detection.engine.checkpoint import save_atomic
from taxdet.detection.model.detector_wrappers import PredictBench
from taxdet.detection.model.hierarchy_scores import coverage_matrix, hierarchy_max
from taxdet.detection.prediction.hierarchy_decoding import (
    decoding_matrix,
    decoding_mode,
    set_hierarchy_decoding,
)
from taxdet.detection.prediction.predictor import load_predictor
from taxdet.losses import levels_to_B_A_K
from tests.detection.prediction.test_hierarchy import OneChildFires, _detected
from tests.factories import make_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

PERSON, ADULT, CHILD, VEHICLE, CAR, TRUCK, LIGHT = range(7)
# vehicle got no background negative (descendant-decoded); traffic_light none and no child
PLAN = {"descendant_decoded": ["vehicle"], "excluded": ["traffic_light"], "floor_fraction": 0.01,
        "floor": 100.0, "median_background_negatives": 10000.0}


class SeveralFire(OneChildFires):
    """``OneChildFires`` with several columns firing, each at its own anchor: column ->
    logit (every other logit -12)."""

    def __init__(self, num_classes: int, fires: dict[int, float]):
        super().__init__(num_classes, 0)
        self.fires = fires

    def forward(self, images: torch.Tensor):
        cls, boxes = super().forward(images)
        cls[0][:, 0] = -12.0   # the parent's anchor-0 column fired by OneChildFires
        for k, (column, logit) in enumerate(self.fires.items()):
            cls[0][:, column, 2 + 3 * k, 2 + 3 * k] = logit   # anchor 0 of a distinct cell
        return cls, boxes


def test_the_plan_clears_the_untrusted_columns_rows(taxset):
    m = coverage_matrix(taxset.ancestors, taxset.names, PLAN)
    logits = torch.randn(2, 30, 7, generator=torch.Generator().manual_seed(0)) * 3
    out = hierarchy_max(logits, m)
    assert torch.equal(out[..., VEHICLE], logits[..., [CAR, TRUCK]].amax(-1))   # own ignored
    assert torch.equal(out[..., PERSON], logits[..., [PERSON, ADULT, CHILD]].amax(-1))
    assert torch.isneginf(out[..., LIGHT]).all()
    assert torch.equal(out[..., [ADULT, CHILD, CAR, TRUCK]], logits[..., [ADULT, CHILD, CAR,
                                                                          TRUCK]])


def test_without_a_plan_coverage_is_hierarchy_and_the_options_map(taxset):
    anc = np.asarray(taxset.ancestors)
    assert np.array_equal(coverage_matrix(anc, taxset.names, None), anc)
    assert np.array_equal(decoding_matrix(None, taxset), anc)
    assert np.array_equal(decoding_matrix("hierarchy", taxset, PLAN), anc)
    assert decoding_matrix("own", taxset, PLAN) is None
    assert [decoding_mode(o) for o in (None, True, False, "own")] == [
        "coverage", "hierarchy", "own", "own"]
    with pytest.raises(ConfigError, match="expected one of own, hierarchy, coverage"):
        decoding_mode("max")
    with pytest.raises(ValueError, match="classes the model does not have"):
        coverage_matrix(anc, taxset.names, {"excluded": ["bus"]})


def test_an_untrusted_parent_is_detected_only_where_a_descendant_fires(taxset):
    # vehicle's own column fires (junk, as a never-background column does), car fires weaker
    # elsewhere; person (trusted) and traffic_light (excluded) fire too
    bench = PredictBench(SeveralFire(7, {VEHICLE: 6.0, CAR: 2.0, PERSON: 3.0, LIGHT: 5.0}))
    bench.eval()
    assert set_hierarchy_decoding(bench, taxset, None, PLAN) is True
    found = _detected(bench)
    car = pytest.approx(torch.sigmoid(torch.tensor(2.0)).item())
    assert [c for c, _ in found] == [PERSON, VEHICLE, CAR]   # no junk vehicle, no light
    assert dict(found)[VEHICLE] == car                         # the car's score, not 6
    assert set_hierarchy_decoding(bench, taxset, "hierarchy") is True   # the plan is kept
    assert sorted(c for c, _ in _detected(bench)) == [PERSON, VEHICLE, VEHICLE, CAR, LIGHT]
    set_hierarchy_decoding(bench, taxset)                    # coverage again, the kept plan
    assert [c for c, _ in _detected(bench)] == [PERSON, VEHICLE, CAR]


def test_the_checkpoint_round_trip_applies_its_plan(tmp_path, taxset):
    old = tmp_path / "old.pt"
    state = make_checkpoint(old, taxset)   # written before the plan existed: no key
    with_plan = tmp_path / "plan.pt"
    save_atomic({**state, "decoding_plan": PLAN}, with_plan)
    want = torch.as_tensor(coverage_matrix(taxset.ancestors, taxset.names, PLAN))

    auto, _, _ = load_predictor(with_plan)
    assert auto.decoding_plan == PLAN and auto.decoding == "coverage"
    assert torch.equal(auto.hierarchy, want)
    assert not auto.hierarchy[VEHICLE, VEHICLE] and not auto.hierarchy[:, LIGHT].any()
    assert torch.equal(load_predictor(with_plan, hierarchy_decoding=True)[0].hierarchy,
                       torch.as_tensor(taxset.ancestors))
    assert load_predictor(with_plan, hierarchy_decoding="own")[0].hierarchy is None
    before, _, _ = load_predictor(old)                       # old checkpoints: as before
    assert before.decoding_plan is None
    assert torch.equal(before.hierarchy, torch.as_tensor(taxset.ancestors))

    images = torch.randn(1, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    size = torch.tensor([[128, 128]])
    got = auto(images, torch.ones(1), size)[0]
    assert LIGHT not in got.classes.tolist() and len(got.classes) > 0
    with torch.no_grad():
        cls_out, _ = auto.model(images)
    top = hierarchy_max(levels_to_B_A_K(cls_out, 7), want).sigmoid().max()
    assert got.scores.max().item() == pytest.approx(top.item(), abs=1e-6)
