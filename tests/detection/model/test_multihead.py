import torch

from taxdet.detection.model.build import ModelConfig, create_model


def _model(head_masks):
    torch.manual_seed(0)
    return create_model(ModelConfig("efficientdet_d0", image_size=128, heads="per-taxonomy"), 7,
                        head_masks).eval()


def test_each_image_goes_through_its_own_taxonomy_heads(head_masks):
    model = _model(head_masks)
    x = torch.randn(3, 3, 128, 128)
    cls_out, box_out = model(x, torch.tensor([2, 0, 2]))
    feats = model.fpn(model.backbone(x))
    own = model.class_nets[0]([f[1:2] for f in feats])
    assert torch.allclose(cls_out[0][1:2], own[0], atol=1e-5)
    own_box = model.box_nets[2]([f[0:1] for f in feats])
    assert torch.allclose(box_out[0][0:1], own_box[0], atol=1e-5)


def test_combined_column_averages_only_the_heads_that_label_it(head_masks):
    model = _model(head_masks)
    x = torch.randn(2, 3, 128, 128)
    cls_out, _ = model(x)
    feats = model.fpn(model.backbone(x))
    heads = [h(feats)[0].view(2, 9, 7, 16, 16).sigmoid() for h in model.class_nets]
    got = cls_out[0].view(2, 9, 7, 16, 16).sigmoid()
    # traffic_light (column 6) is labeled only by customer_c (head 2)
    assert torch.allclose(got[:, :, 6], heads[2][:, :, 6], atol=1e-4)
    # person (column 0) is labeled by customer_a and customer_b: mean of heads 0 and 1
    assert torch.allclose(got[:, :, 0], (heads[0][:, :, 0] + heads[1][:, :, 0]) / 2, atol=1e-4)


def test_separate_heads_cost_one_head_pair_per_taxonomy(head_masks):
    shared = create_model(ModelConfig("efficientdet_d0", image_size=128), 7)
    multi = _model(head_masks)
    head_params = sum(p.numel() for p in shared.class_net.parameters()) + \
        sum(p.numel() for p in shared.box_net.parameters())
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(multi) == count(shared) + 2 * head_params  # 3 taxonomies: 2 extra pairs
