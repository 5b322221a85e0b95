"""taxdet.detection.prediction.hierarchy_decoding: a parent column scores the max over itself and
its descendants; leaves and flat taxonomies are unchanged; the predictor turns a child's detection
into its parent's too."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

from taxdet.detection.model.build import ModelConfig, effdet_config
from taxdet.detection.model.detector_wrappers import PredictBench
from taxdet.detection.model.hierarchy_scores import (
    has_hierarchy,
    hierarchy_groups,
    hierarchy_max,
    hierarchy_max_levels,
)
from taxdet.detection.prediction.hierarchy_decoding import (
    resolve_hierarchy_decoding,
    set_hierarchy_decoding,
)
from taxdet.detection.prediction.predictor import load_predictor
from taxdet.losses import levels_to_B_A_K
from taxdet.supertax.tree import SuperClass, SuperTaxonomy
from tests.factories import TINY_SIZE, make_checkpoint

pytestmark = pytest.mark.usefixtures("one_thread")

# driving columns: 0 person > 1 pedestrian_adult, 2 pedestrian_child;
#                  3 vehicle > 4 car, 5 truck; 6 traffic_light
PERSON, ADULT, CHILD, VEHICLE, CAR, TRUCK, LIGHT = range(7)


def _random_logits(*shape: int, seed: int = 0) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed)) * 3


def test_driving_parents_group_their_descendants(taxset):
    assert hierarchy_groups(taxset.ancestors) == [(PERSON, [PERSON, ADULT, CHILD]),
                                                  (VEHICLE, [VEHICLE, CAR, TRUCK])]


def test_parent_score_is_the_max_over_itself_and_its_descendants(taxset):
    logits = _random_logits(2, 50, 7)
    out = hierarchy_max(logits, taxset.ancestors)
    torch.testing.assert_close(out[..., PERSON], logits[..., [PERSON, ADULT, CHILD]].amax(-1),
                               rtol=0, atol=0)
    torch.testing.assert_close(out[..., VEHICLE], logits[..., [VEHICLE, CAR, TRUCK]].amax(-1),
                               rtol=0, atol=0)
    # some anchors really take a child's score (otherwise the test would prove nothing)
    assert (out[..., PERSON] > logits[..., PERSON]).any()


def test_leaf_columns_are_unchanged(taxset):
    logits = _random_logits(3, 40, 7, seed=1)
    out = hierarchy_max(logits, taxset.ancestors)
    leaves = [ADULT, CHILD, CAR, TRUCK, LIGHT]
    assert torch.equal(out[..., leaves], logits[..., leaves])
    assert out.shape == logits.shape


def test_parent_is_never_lowered(taxset):
    logits = _random_logits(1, 100, 7, seed=2)
    assert (hierarchy_max(logits, taxset.ancestors) >= logits).all()


def test_flat_taxonomy_changes_nothing():
    flat = np.eye(4, dtype=bool)
    logits = _random_logits(2, 10, 4)
    assert hierarchy_max(logits, flat) is logits
    assert not has_hierarchy(flat)


def test_grandparent_takes_its_grandchildren_too():
    # animal > dog > puppy; animal > cat
    sup = SuperTaxonomy("t", [SuperClass("animal", children=[
        SuperClass("dog", children=[SuperClass("puppy")]), SuperClass("cat")])])
    logits = torch.tensor([[0.0, -1.0, 5.0, 1.0]])  # animal, dog, puppy, cat
    out = hierarchy_max(logits, sup.ancestors)
    assert out.tolist() == [[5.0, 5.0, 5.0, 1.0]]  # animal = max(0, -1, 5, 1); dog = max(-1, 5)


def test_other_dims_and_gradient_reach_the_winning_child(taxset):
    logits = _random_logits(2, 7, 5, seed=3).requires_grad_()  # K on dim 1
    out = hierarchy_max(logits, taxset.ancestors, dim=1)
    torch.testing.assert_close(out[:, VEHICLE], logits[:, [VEHICLE, CAR, TRUCK]].amax(1))
    out[:, PERSON].sum().backward()
    winners = logits[:, [PERSON, ADULT, CHILD]].argmax(1)  # [2, 5] index within the group
    assert logits.grad.sum() == 10  # one winner per (image, anchor): 2 x 5
    assert (logits.grad[:, [PERSON, ADULT, CHILD]].argmax(1) == winners).all()


def test_wrong_shapes_are_value_errors(taxset):
    with pytest.raises(ValueError, match="5 columns along dim 1, the hierarchy 7"):
        hierarchy_max(torch.zeros(1, 5), taxset.ancestors)
    with pytest.raises(ValueError, match="square"):
        hierarchy_max(torch.zeros(1, 7), np.ones((7, 3), bool))


def test_per_level_outputs_equal_the_flat_decoding(taxset):
    """Per level [B, nA * K, H, W] (anchor-major): same as [B, A, K] after flattening."""
    levels = [_random_logits(2, 9 * 7, s, s, seed=s) for s in (4, 2, 1)]
    out = hierarchy_max_levels(levels, taxset.ancestors, 7)
    assert [o.shape for o in out] == [lv.shape for lv in levels]
    torch.testing.assert_close(levels_to_B_A_K(out, 7),
                               hierarchy_max(levels_to_B_A_K(levels, 7), taxset.ancestors),
                               rtol=0, atol=0)


def test_auto_is_on_with_a_parent_and_off_for_a_flat_taxonomy(taxset):
    assert resolve_hierarchy_decoding(None, taxset) is True
    assert resolve_hierarchy_decoding(False, taxset) is False

    class Flat:
        ancestors = np.eye(3, dtype=bool)
    assert resolve_hierarchy_decoding(None, Flat()) is False
    assert resolve_hierarchy_decoding(True, Flat()) is True  # asked for: harmless no-op


class OneChildFires(nn.Module):
    """Stands in for an EfficientDet: every class logit -12 except column ``column`` at one
    anchor of the first level (+4); box codes 0 (the anchor's own box)."""

    def __init__(self, num_classes: int, column: int):
        super().__init__()
        self.config = effdet_config(ModelConfig("efficientdet_d0", image_size=TINY_SIZE),
                                    num_classes)
        self.column = column

    def forward(self, images: torch.Tensor):
        cfg, B = self.config, images.shape[0]
        nA, K = cfg.num_scales * len(cfg.aspect_ratios), cfg.num_classes
        sides = [TINY_SIZE // 2 ** level for level in range(cfg.min_level, cfg.max_level + 1)]
        cls = [torch.full((B, nA * K, s, s), -12.0) for s in sides]
        cls[0][:, self.column, 5, 5] = 4.0  # anchor 0 at row 5, column 5: channel 0 * K + column
        return cls, [torch.zeros(B, nA * 4, s, s) for s in sides]


def _detected(bench: PredictBench) -> list[tuple[int, float]]:
    [det] = bench(torch.zeros(1, 3, TINY_SIZE, TINY_SIZE), torch.ones(1),
                  torch.tensor([[TINY_SIZE, TINY_SIZE]]))
    keep = det.scores > 0.5
    return sorted(zip(det.classes[keep].tolist(), det.scores[keep].tolist()))


def test_predictor_with_hierarchy_detects_the_parent_where_only_a_child_fired(taxset):
    bench = PredictBench(OneChildFires(7, CAR)).eval()
    assert [c for c, _ in _detected(bench)] == [CAR]
    assert set_hierarchy_decoding(bench, taxset, True) is True
    found = _detected(bench)
    assert [c for c, _ in found] == [VEHICLE, CAR]  # the car is a vehicle, same score
    assert found[0][1] == found[1][1] == pytest.approx(torch.sigmoid(torch.tensor(4.0)).item())
    assert set_hierarchy_decoding(bench, taxset, False) is False
    assert [c for c, _ in _detected(bench)] == [CAR]


def test_a_fired_leaf_without_parent_gains_nothing(taxset):
    bench = PredictBench(OneChildFires(7, LIGHT), hierarchy=torch.as_tensor(taxset.ancestors))
    assert [c for c, _ in _detected(bench.eval())] == [LIGHT]


def test_load_predictor_decodes_the_hierarchy_by_default(tmp_path, taxset):
    path = tmp_path / "last.pt"
    make_checkpoint(path, taxset)
    auto, _, _ = load_predictor(path)
    assert auto.hierarchy is not None and torch.equal(auto.hierarchy,
                                                      torch.as_tensor(taxset.ancestors))
    off, _, _ = load_predictor(path, hierarchy_decoding=False)
    assert off.hierarchy is None
    images = _random_logits(1, 3, TINY_SIZE, TINY_SIZE)
    size = torch.tensor([[TINY_SIZE, TINY_SIZE]])
    got = auto(images, torch.ones(1), size)[0]
    with torch.no_grad():
        cls_out, _ = off.model(images)
    top = hierarchy_max(levels_to_B_A_K(cls_out, 7), taxset.ancestors).sigmoid().max()
    assert got.scores.max().item() == pytest.approx(top.item(), abs=1e-6)
