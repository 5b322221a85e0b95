"""taxdet.detection.prediction.customer_topk: a customer's top-k over its own columns equals
its sliced head's (what its exported model returns), and the cap counts only its classes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from taxdet.detection.export.sliced_head import customer_outputs, slice_class_head
from taxdet.detection.model.build import ModelConfig, create_model
from taxdet.detection.model.detector_wrappers import PredictBench
from taxdet.detection.prediction.customer_labels import customer_labels
from taxdet.detection.prediction.customer_topk import customer_predictor, to_super_ids

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def bench(driving):
    torch.manual_seed(0)
    model = create_model(ModelConfig("efficientdet_d0", image_size=128), driving.num_classes)
    return PredictBench(model.eval()).eval()


def _run(predictor, seed=1):
    torch.manual_seed(seed)
    images = torch.randn(2, 3, 128, 128)
    return predictor(images, torch.ones(2), torch.tensor([[128, 128], [128, 128]]))


def test_columns_in_label_order_like_the_sliced_export(driving):
    for customer in ("customer_a", "customer_b", "customer_c"):
        space = customer_labels(driving, customer)
        assert tuple(space.column_labels()) == customer_outputs(driving, customer).columns


def test_equals_the_sliced_head_and_fills_the_cap_with_the_customers_classes(driving, bench):
    columns = tuple(customer_labels(driving, "customer_b").column_labels())
    mine = _run(customer_predictor(bench, columns, max_det=50))
    sliced = _run(PredictBench(slice_class_head(bench.model, columns), max_det_per_image=50))
    for a, b in zip(mine, sliced):
        assert len(a.scores) == 50
        assert torch.allclose(a.scores, b.scores, atol=1e-6)
        assert torch.allclose(a.boxes, b.boxes, atol=1e-3)
        assert torch.equal(a.classes, b.classes)
    results = to_super_ids([{"image_id": 1, "category_id": int(c) + 1, "bbox": [0, 0, 1, 1],
                             "score": 0.5} for c in mine[0].classes], columns)
    assert {r["category_id"] - 1 for r in results} <= set(columns)


def test_hierarchy_max_is_taken_over_every_column_before_the_selection(driving, bench):
    bench.hierarchy = torch.as_tensor(np.asarray(driving.ancestors), dtype=torch.bool)
    try:
        columns = tuple(customer_labels(driving, "customer_c").column_labels())  # vehicle, light
        wrapped = customer_predictor(bench, columns, max_det=20).model
        torch.manual_seed(2)
        x = torch.randn(1, 3, 128, 128)
        full = bench.model(x)[0][0]            # level 0: [1, nA * K, H, W]
        K = driving.num_classes
        maxed = full.view(1, -1, K, *full.shape[-2:])
        vehicle = driving.names.index("vehicle")
        kids = [j for j in range(K) if driving.ancestors[j, vehicle]]
        picked = wrapped(x)[0][0].view(1, -1, len(columns), *full.shape[-2:])
        assert torch.allclose(picked[:, :, 0], maxed[:, :, kids].amax(2))
    finally:
        bench.hierarchy = None
