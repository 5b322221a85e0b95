import pytest
import torch
from effdet import get_efficientdet_config
from effdet.anchors import Anchors

from taxdet.core.errors import ConfigError
from taxdet.detection.model.build import (
    MODEL_NAMES,
    ModelConfig,
    anchor_settings,
    create_model,
    effdet_config,
)


@pytest.mark.parametrize("name", ["efficientdet_d0", "tf_efficientdet_lite0"])
def test_head_predicts_every_super_class_at_each_level(name):
    model = create_model(ModelConfig(name, image_size=128), num_classes=7).eval()
    cls_out, box_out = model(torch.zeros(1, 3, 128, 128))
    # 3 scales x 3 aspect ratios = 9 anchors per cell; 9 * 7 classes = 63 channels
    assert [c.shape[1] for c in cls_out] == [63] * 5
    assert [b.shape[1] for b in box_out] == [36] * 5
    assert [c.shape[-1] for c in cls_out] == [16, 8, 4, 2, 1]  # 128 / 2**3 ... 128 / 2**7


def test_all_d_and_lite_configs_are_known():
    for name in ([f"tf_efficientdet_d{i}" for i in range(8)]
                 + ["tf_efficientdet_lite0", "efficientdet_d0"]):
        assert name in MODEL_NAMES


def test_unknown_model_name_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="unknown model 'efficientdet_d99'.*efficientdet_d0"):
        effdet_config(ModelConfig("efficientdet_d99"), 7)


def test_image_size_must_fit_the_feature_pyramid():
    with pytest.raises(ValueError, match="multiple of 128"):
        effdet_config(ModelConfig("efficientdet_d0", image_size=200), 7)


def test_backbone_loads_only_from_a_local_file(tmp_path):
    donor = create_model(ModelConfig("efficientdet_d0", image_size=128), 7)
    path = tmp_path / "backbone.pth"
    torch.save(donor.backbone.state_dict(), path)
    model = create_model(
        ModelConfig("efficientdet_d0", image_size=128, pretrained_backbone=str(path)), 7)
    for (k, a), b in zip(model.backbone.state_dict().items(), donor.backbone.state_dict().values()):
        assert torch.equal(a, b), k


def test_foreign_backbone_file_is_refused_with_its_name(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(3, 3)}, path)
    with pytest.raises(ValueError, match="other.pth: no tensor matches"):
        create_model(
            ModelConfig("efficientdet_d0", image_size=128, pretrained_backbone=str(path)), 7)


# -- anchor settings -----------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["efficientdet_d0", "tf_efficientdet_lite0", "tf_efficientdet_d7",
                                  "efficientdetv2_dt"])
def test_unset_anchor_settings_keep_the_models_own(name):
    # lite0 has anchor_scale 3.0, d7 5.0, efficientdetv2_dt scalar aspect ratios
    ours = effdet_config(ModelConfig(name, image_size=256), 7)
    theirs = get_efficientdet_config(name)
    for key in ("anchor_scale", "aspect_ratios", "num_scales"):
        assert ours[key] == theirs[key], key
    theirs.image_size = (256, 256)
    assert torch.equal(Anchors.from_config(ours).boxes, Anchors.from_config(theirs).boxes)


def test_anchor_settings_set_the_heads_anchor_count():
    cfg = ModelConfig("efficientdet_d0", image_size=128, num_scales=2,
                      aspect_ratios=[[1.0, 1.0], [2.0, 0.5]])
    cls_out, box_out = create_model(cfg, num_classes=7).eval()(torch.zeros(1, 3, 128, 128))
    # 2 scales x 2 aspect ratios = 4 anchors per cell
    assert [c.shape[1] for c in cls_out] == [4 * 7] * 5
    assert [b.shape[1] for b in box_out] == [4 * 4] * 5
    anchors = Anchors.from_config(effdet_config(cfg, 7))
    assert anchors.boxes.shape[0] == 4 * sum(s * s for s in (16, 8, 4, 2, 1))


def test_anchor_scale_sets_the_anchor_size():
    cfg = ModelConfig("efficientdet_d0", image_size=128, anchor_scale=2.5,
                      aspect_ratios=[(1.0, 1.0), (1.4, 0.7)], num_scales=1)
    config = effdet_config(cfg, 7)
    assert config.anchor_scale == 2.5 and config.num_scales == 1
    assert [tuple(p) for p in config.aspect_ratios] == [(1.0, 1.0), (1.4, 0.7)]
    boxes = Anchors.from_config(config).boxes           # [A, 4] yxyx, level 3 first
    y1, x1, y2, x2 = boxes[0].tolist()                  # level 3, cell (0, 0), octave 0, (1, 1)
    assert (x2 - x1, y2 - y1) == (2.5 * 8, 2.5 * 8)
    y1, x1, y2, x2 = boxes[1].tolist()                  # same cell, aspect (1.4, 0.7)
    assert (x2 - x1, y2 - y1) == pytest.approx((2.5 * 8 * 1.4, 2.5 * 8 * 0.7))


def test_anchor_settings_are_the_effective_ones():
    d0 = [(1.0, 1.0), (1.4, 0.7), (0.7, 1.4)]
    assert anchor_settings(ModelConfig()) == {"anchor_scale": 4.0, "aspect_ratios": d0,
                                              "num_scales": 3}
    assert anchor_settings(ModelConfig("tf_efficientdet_lite0"))["anchor_scale"] == 3.0
    scalar = anchor_settings(ModelConfig("efficientdetv2_dt", image_size=256))["aspect_ratios"]
    assert scalar[1] == pytest.approx((2 ** 0.5, 2 ** -0.5))   # effdet's reading of ratio 2.0
    assert anchor_settings(ModelConfig(anchor_scale=2.0, num_scales=1)) == {
        "anchor_scale": 2.0, "aspect_ratios": d0, "num_scales": 1}


@pytest.mark.parametrize("kwargs, message", [
    ({"anchor_scale": 0.0}, "anchor_scale must be > 0"),
    ({"anchor_scale": float("nan")}, "anchor_scale must be > 0"),
    ({"num_scales": 0}, "num_scales must be >= 1"),
    ({"aspect_ratios": [(1.0, 0.0)]}, "non-empty list of positive"),
    ({"aspect_ratios": []}, "non-empty list of positive"),
    ({"aspect_ratios": [(1.0, 2.0, 3.0)]}, "list of \\[x, y\\] pairs"),
])
def test_bad_anchor_settings_are_refused(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        ModelConfig(**kwargs)
