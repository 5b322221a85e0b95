import pytest
import torch

from detection.model.build import MODEL_NAMES, ModelConfig, create_model, effdet_config


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
