"""taxdet.detection.export.sliced_head: a customer's columns, and a class head cut to them."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn as nn

import taxdet.supertax as supertax
from taxdet.core.errors import ConfigError
from taxdet.detection.export.sliced_head import (
    anchor_rows,
    customer_outputs,
    full_outputs,
    predict_conv,
    slice_class_head,
    sliced_conv,
)
from taxdet.detection.model.build import ModelConfig, create_model
from taxdet.losses import levels_to_B_A_K
from tests.factories import TINY_SIZE

pytestmark = pytest.mark.usefixtures("one_thread")

NULL_ONLY = """kind: taxonomy
name: farm
super_taxonomy: zoo
labels:
  - {name: Goose, maps_to: null}
"""
ZOO = "kind: super-taxonomy\nname: zoo\nclasses: [{name: duck}]\n"
FARM = "kind: taxonomy\nname: pond\nsuper_taxonomy: zoo\nlabels:\n  - {name: Duck, maps_to: duck}\n"


@pytest.fixture(scope="module")
def model(taxset):
    torch.manual_seed(0)
    return create_model(ModelConfig("efficientdet_d0", image_size=TINY_SIZE),
                        taxset.num_classes).eval()


def test_customer_columns_follow_label_order_with_parents_and_nulls(taxset):
    col = {n: j for j, n in enumerate(taxset.names)}
    a = customer_outputs(taxset, "customer_a")
    assert a.columns == (col["person"],) and a.labels == (("Human",),)
    assert a.not_predicted == ("Dog",) and a.customer == "customer_a"
    b = customer_outputs(taxset, "customer_b")
    wanted = ("pedestrian_adult", "pedestrian_child", "car", "truck")
    assert b.columns == tuple(col[n] for n in wanted)
    assert b.labels == (("Pedestrian_adult",), ("Pedestrian_child",), ("Car",), ("Truck",))
    c = customer_outputs(taxset, "customer_c")
    assert c.columns == (col["vehicle"], col["traffic_light"])  # a parent label: its column
    full = full_outputs(taxset)
    assert full.columns == tuple(range(taxset.num_classes)) and full.customer is None
    assert [n for (n,) in full.labels] == taxset.names


def test_unknown_customer_and_customer_without_predictable_labels_are_config_errors(taxset,
                                                                                    tmp_path):
    with pytest.raises(ConfigError, match="'nobody'.*known: customer_a"):
        customer_outputs(taxset, "nobody")
    (tmp_path / "zoo.yaml").write_text(ZOO)
    (tmp_path / "pond.yaml").write_text(FARM)
    (tmp_path / "farm.yaml").write_text(NULL_ONLY)
    zoo = supertax.load([tmp_path])
    with pytest.raises(ConfigError, match="'farm': none of its labels.*Goose"):
        customer_outputs(zoo, "farm")


def test_anchor_rows_are_anchor_major():
    assert anchor_rows((1, 4), num_anchors=3, num_classes=7).tolist() == [1, 4, 8, 11, 15, 18]


def test_sliced_model_outputs_equal_the_full_models_columns(model, taxset):
    columns = (4, 1, 5)  # any order: the sliced outputs follow it
    sliced = slice_class_head(model, columns).eval()
    x = torch.randn(2, 3, TINY_SIZE, TINY_SIZE)
    with torch.no_grad():
        full_cls, full_box = model(x)
        cut_cls, cut_box = sliced(x)
    K = taxset.num_classes
    for f, c in zip(full_cls, cut_cls):  # per level, the anchor-major channel layout
        B, _, H, W = f.shape
        assert torch.equal(c, f.view(B, -1, K, H, W)[:, :, list(columns)].reshape(B, -1, H, W))
    # the layout is the one the loss and effdet's post-processing read
    assert torch.equal(levels_to_B_A_K(cut_cls, 3), levels_to_B_A_K(full_cls, K)[..., columns])
    assert all(torch.equal(a, b) for a, b in zip(full_box, cut_box))
    assert sliced.config.num_classes == 3 and model.config.num_classes == K  # input unchanged
    assert model.class_net.predict.conv_pw.out_channels == 9 * K
    assert sliced.class_net.predict.conv_pw.out_channels == 9 * 3


def test_slicing_refuses_per_taxonomy_heads_and_bad_columns(model, head_masks, taxset):
    heads = create_model(ModelConfig("efficientdet_d0", image_size=TINY_SIZE, heads="per-taxonomy"),
                         taxset.num_classes, head_masks=head_masks)
    with pytest.raises(ConfigError, match="per-taxonomy heads.*export the full head"):
        slice_class_head(heads, (0, 1))
    for bad in [(), (1, 1), (taxset.num_classes,), (-1,)]:
        with pytest.raises(ValueError, match="distinct columns"):
            slice_class_head(model, bad)


class _PlainPredict(nn.Module):
    """The non-separable head's last layer (effdet ``ConvBnAct2d``): a 3x3 ``conv``."""

    def __init__(self, outputs: int):
        super().__init__()
        self.conv = nn.Conv2d(8, outputs, 3, padding=1)

    def forward(self, x):
        return self.conv(x)


def test_a_3x3_predict_conv_slices_the_same_way():
    head = nn.Module()
    head.predict = _PlainPredict(2 * 5)
    holder, name = predict_conv(head, num_anchors=2, num_classes=5)
    assert (holder, name) == (head.predict, "conv")
    rows = anchor_rows((3, 0), 2, 5)
    cut = sliced_conv(head.predict.conv, rows)
    x = torch.randn(1, 8, 6, 6)
    np.testing.assert_array_equal(cut(x).detach(), head.predict(x)[:, rows].detach())
    with pytest.raises(ValueError, match="no final conv with 3 x 5"):
        predict_conv(head, num_anchors=3, num_classes=5)
