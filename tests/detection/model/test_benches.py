"""TrainBench (labeling + network + masked loss) and PredictBench (decode + NMS, original pixels).

Batches come from the real pipeline: a generated demo (128 px), merged, through
``DetectionDataset`` with the deterministic eval transform, EfficientDet-D0 at 128 px
(9 anchors x (16^2 + 8^2 + 4^2 + 2^2 + 1^2) = 9 x 341 = 3069 anchors, K = 7 columns).
"""

from __future__ import annotations

import pytest
import torch
from effdet.anchors import Anchors
from effdet.bench import DetBenchTrain

import taxdet.supertax as supertax
from taxdet.datasets import MergeConfig, merge
from taxdet.datasets.torch_dataset import DetectionDataset, collate
from taxdet.datasets.transforms import AugmentConfig, eval_transform
from taxdet.detection.anchors.labeler import LabelerConfig
from taxdet.detection.engine.train_step import to_device, train_step
from taxdet.detection.model.build import ModelConfig, create_model
from taxdet.detection.model.detector_wrappers import (
    Detections,
    PredictBench,
    TrainBench,
    to_coco_results,
)
from taxdet.detection.training.train_data import ItemLabeler
from taxdet.losses import DetectionLossConfig, levels_to_B_A_K, masked_detection_loss
from tests.factories import make_tiny_taxonomies

# the masking tests: labeled columns only, no set term at coarse boxes
STRICT = DetectionLossConfig(certain_cells="none", coarse_children="none")

pytestmark = pytest.mark.usefixtures("one_thread")

K, ANCHORS, PER_LOCATION = 7, 3069, 9
PERSON, PED_ADULT = 0, 1


@pytest.fixture(scope="module")
def taxset(tmp_path_factory) -> supertax.TaxonomySet:
    return supertax.load([make_tiny_taxonomies(tmp_path_factory.mktemp("bench"))])


@pytest.fixture(scope="module")
def samples(taxset):
    """Two images of customer_a (labels person only) and two of customer_b (5 columns)."""
    superset, _ = merge(taxset, MergeConfig())
    pick = {"customer_a": [], "customer_b": []}
    for s in superset.samples:
        if s.taxonomy in pick and len(pick[s.taxonomy]) < 2 and len(s.boxes) and not len(s.ignore):
            pick[s.taxonomy].append(s)
    return pick["customer_a"] + pick["customer_b"]


def fresh_model(seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return create_model(ModelConfig("efficientdet_d0", image_size=128), K)


def make_batch(samples, taxset, labeled_in_workers: bool) -> dict:
    model_config = fresh_model().config
    target_fn = (ItemLabeler(Anchors.from_config(model_config), LabelerConfig())
                 if labeled_in_workers else None)
    ds = DetectionDataset(samples, taxset, eval_transform(AugmentConfig(image_size=128)),
                          target_fn=target_fn)
    return collate([ds[i] for i in range(len(ds))])


@pytest.fixture(scope="module")
def batch(samples, taxset) -> dict:
    return make_batch(samples, taxset, labeled_in_workers=False)


def seeded(fn, *args):
    """Call ``fn`` after seeding torch: EfficientNet's drop-path is random in training mode, so two
    forwards of one batch agree only from the same random state."""
    torch.manual_seed(1234)
    return fn(*args)


def make_bench(taxset, model=None, **kwargs) -> TrainBench:
    return TrainBench(model if model is not None else fresh_model(),
                      torch.as_tensor(taxset.ancestors), LabelerConfig(), STRICT,
                      **kwargs)


def test_batch_mixes_taxonomies_with_different_label_masks(batch):
    assert batch["image"].shape == (4, 3, 128, 128)
    # customer_a labels only person; customer_b labels person, both pedestrians, car, truck
    assert batch["label_mask"].tolist() == (
        [[True, False, False, False, False, False, False]] * 2
        + [[True, True, True, False, True, True, False]] * 2)


def test_loss_equals_masked_detection_loss_on_the_labelers_targets(batch, taxset):
    bench = make_bench(taxset)
    with torch.no_grad():
        ours = seeded(bench, batch)
        t = bench.labeler(batch["boxes"], batch["classes"], batch["box_weights"], batch["ignore"])
        cls_out, box_out = seeded(bench.model, batch["image"])
        expected = masked_detection_loss(
            levels_to_B_A_K(cls_out, K), levels_to_B_A_K(box_out, 4), t.cls_targets,
            t.box_targets, t.num_positives, STRICT, class_mask=batch["label_mask"],
            ancestors=torch.as_tensor(taxset.ancestors), box_weights=t.box_weights)
    assert t.cls_targets.shape == (4, ANCHORS) and (t.num_positives > 0).all()
    for key in ("loss", "class_loss", "box_loss"):
        assert torch.equal(ours[key], expected[key]), key


def test_targets_labeled_in_workers_give_the_same_loss_as_labeling_on_the_device(
        samples, taxset, batch):
    precomputed = make_batch(samples, taxset, labeled_in_workers=True)
    bench = make_bench(taxset)
    on_device, from_workers = bench.targets(batch), bench.targets(precomputed)
    for name in ("cls_targets", "box_targets", "box_weights", "num_positives"):
        assert torch.equal(getattr(on_device, name), getattr(from_workers, name)), name
    with torch.no_grad():
        a, b = seeded(bench, batch), seeded(bench, precomputed)
    assert {k: v.item() for k, v in a.items()} == {k: v.item() for k, v in b.items()}


def test_channels_last_layout_gives_the_same_loss_and_gradients(batch, taxset):
    plain = make_bench(taxset)
    fast = make_bench(taxset, model=fresh_model()).to(memory_format=torch.channels_last)
    last = to_device(batch, torch.device("cpu"), channels_last=True)
    assert last["image"].is_contiguous(memory_format=torch.channels_last)
    a, b = seeded(plain, batch), seeded(fast, last)
    a["loss"].backward()
    b["loss"].backward()
    for key in ("loss", "class_loss", "box_loss"):
        assert torch.allclose(a[key], b[key], rtol=1e-4, atol=1e-5), key
    grads = [(p.grad, q.grad) for p, q in zip(plain.parameters(), fast.parameters())
             if p.grad is not None]
    # summation order differs between the layouts: compare each gradient as a whole, with an
    # absolute floor for the ~1e-6 rounding-noise gradients of biases that a BatchNorm follows
    # (their differences stay below 2e-5)
    assert grads and all((g - h).norm() <= 1e-3 * g.norm() + 1e-4 for g, h in grads)


def test_unmasked_bench_equals_effdet_det_bench_train(batch, taxset):
    """Independent reference: effdet's own labeler (0.5 / 0.5) and loss. Our bench with the mask
    off, the same thresholds, no hierarchy (identity ancestors) and unit box weights must agree."""
    model = fresh_model()
    ours = TrainBench(model, torch.eye(K, dtype=torch.bool),
                      LabelerConfig(pos_iou=0.5, neg_iou=0.5),
                      DetectionLossConfig(), taxonomy_mask=False)
    theirs = DetBenchTrain(model)
    b = dict(batch, box_weights=(batch["classes"] >= 0).float())
    padding = b["classes"] < 0
    target = {"bbox": b["boxes"][..., [1, 0, 3, 2]],                      # effdet wants y1x1y2x2
              "cls": torch.where(padding, -1, b["classes"] + 1).float()}  # and 1-based classes
    with torch.no_grad():
        mine, ref = seeded(ours, b), seeded(theirs, b["image"], target)
    for key in ("loss", "class_loss", "box_loss"):
        torch.testing.assert_close(mine[key], ref[key], rtol=1e-5, atol=1e-6)


def test_a_few_training_steps_reduce_the_loss_on_a_fixed_batch(batch, taxset):
    bench = make_bench(taxset)
    optimizer = torch.optim.AdamW(bench.parameters(), lr=1e-2)
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    losses = [train_step(bench, batch, optimizer, scaler, 10.0, step)["loss"]
              for step in range(1, 7)]
    assert losses[-1] < 0.5 * losses[0], losses


def class_head_grads(bench: TrainBench, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
    """Gradients of the class head's last (pointwise) conv: weight [9, K, 64], bias [9, K].

    Output channel a * K + k is anchor a's logit for column k (levels_to_B_A_K's layout).
    """
    bench.zero_grad(set_to_none=True)
    bench(batch)["loss"].backward()
    conv = bench.model.class_net.predict.conv_pw
    return (conv.weight.grad.view(PER_LOCATION, K, -1).clone(),
            conv.bias.grad.view(PER_LOCATION, K).clone())


def test_masked_class_gets_zero_gradient_from_masked_samples(batch, taxset):
    # Column person for all four images: customer_b's pedestrian boxes are positives for
    # person too (ancestor), so unmasked the column gets a gradient; masked, exactly none.
    bench = make_bench(taxset)
    w, b = class_head_grads(bench, batch)
    assert w[:, PERSON].abs().sum() > 0 and b[:, PERSON].abs().sum() > 0
    masked = dict(batch, label_mask=batch["label_mask"].clone())
    masked["label_mask"][:, PERSON] = False
    w, b = class_head_grads(bench, masked)
    assert torch.count_nonzero(w[:, PERSON]) == 0 and torch.count_nonzero(b[:, PERSON]) == 0
    assert w[:, PED_ADULT].abs().sum() > 0                 # other labeled columns still learn
    # with the default rule the unlabeled root still trains where it is certain: positives
    # above the pedestrian boxes, negatives at the other classes' boxes
    bench.loss_cfg = DetectionLossConfig()
    w, b = class_head_grads(bench, masked)
    assert w[:, PERSON].abs().sum() > 0 and b[:, PERSON].abs().sum() > 0


def test_partly_masked_column_gets_exactly_the_gradient_of_its_labeled_samples(batch, taxset):
    # Column pedestrian_adult is labeled only by customer_b (images 2, 3). Its gradient must be
    # what images 2, 3 alone send back: the same forward with images 0, 1's logits detached.
    model = fresh_model()
    cls_out, box_out = model(batch["image"])
    cls, box = levels_to_B_A_K(cls_out, K), levels_to_B_A_K(box_out, 4)
    labeler = make_bench(taxset, model).labeler
    t = labeler(batch["boxes"], batch["classes"], batch["box_weights"], batch["ignore"])
    conv = model.class_net.predict.conv_pw

    def grad_of_column(logits: torch.Tensor, class_mask: torch.Tensor) -> torch.Tensor:
        loss = masked_detection_loss(logits, box, t.cls_targets, t.box_targets, t.num_positives,
                                     STRICT, class_mask=class_mask,
                                     ancestors=torch.as_tensor(taxset.ancestors),
                                     box_weights=t.box_weights)["class_loss"]
        (g,) = torch.autograd.grad(loss, conv.weight, retain_graph=True)
        return g.view(PER_LOCATION, K, -1)[:, PED_ADULT]

    masked = grad_of_column(cls, batch["label_mask"])
    subset = grad_of_column(torch.cat([cls[:2].detach(), cls[2:]]), batch["label_mask"])
    unmasked = grad_of_column(cls, torch.ones_like(batch["label_mask"]))
    assert torch.equal(masked, subset)
    assert not torch.allclose(masked, unmasked)            # images 0, 1 would have pushed it


# ---------------------------------------------------------------------------------------------
# prediction


@pytest.mark.parametrize("orig_hw", [(128, 128), (100, 200), (300, 150)])
def test_predictions_are_in_original_pixels(orig_hw):
    """With zero box regression every detection is an anchor box (input pixels, clipped to the
    image part of the input); divided by ``scale`` it must come back in original pixels."""
    h, w = orig_hw
    scale = 128 / max(h, w)                    # long side resized to the 128 px input
    model = fresh_model().eval()
    with torch.no_grad():
        model.box_net.predict.conv_pw.weight.zero_()
        model.box_net.predict.conv_pw.bias.zero_()
    predictor = PredictBench(model, max_det_per_image=50)
    (det,) = predictor(torch.randn(1, 3, 128, 128), torch.tensor([scale]), torch.tensor([[h, w]]))
    assert len(det.boxes) > 0
    assert (det.boxes[:, [0, 2]] <= w + 1e-3).all() and (det.boxes[:, [1, 3]] <= h + 1e-3).all()
    anchors = Anchors.from_config(model.config).boxes[:, [1, 0, 3, 2]]      # yxyx -> xyxy
    limit = torch.tensor([w, h, w, h]) * scale                              # image part of input
    clipped = torch.minimum(anchors.clamp(min=0), limit)
    distance = (det.boxes[:, None] * scale - clipped[None]).abs().amax(dim=2).min(dim=1).values
    assert distance.max() < 1e-3                                            # pixels


def test_coco_results_use_column_plus_one_and_xywh():
    dets = Detections(torch.tensor([[10.0, 20.0, 50.0, 80.0]]), torch.tensor([0.9]),
                      torch.tensor([4]))
    assert to_coco_results([dets], [7]) == [
        {"image_id": 7, "category_id": 5, "bbox": [10.0, 20.0, 40.0, 60.0], "score": 0.9}]
