"""The ONNX Runtime backend: the same regions as the torch backend within tolerance (labels
equal, boxes within 1 px, scores within 1e-3), for every customer and for a batch mixing
customers; the raw outputs agree too. ``predict.py --backend onnxruntime`` gives the same
pre-labels as ``--backend torch``, and a full head (all K columns, then the customer's) the
same regions as the sliced one."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from taxdet.detection.serving.prelabel_service import ImageItem, PrelabelService
from taxdet.detection.serving.serve_options import ServeOptions
from tests.detection.serving.conftest import labeling_config
from tests.detection.serving.test_protocol import tasks_of
from tests.detection.serving.test_shared_trunk import (
    LABELS,
    assert_same,
    file_boxes,
    predict_py,
    served_boxes,
)

pytest.importorskip("onnxruntime")
pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def ort_service(served):
    return PrelabelService(dataclasses.replace(served.options, backend="onnxruntime",
                                               threads=1))


@pytest.fixture
def ort_client(ort_service):
    from fastapi.testclient import TestClient

    from taxdet.detection.serving.serve_app import create_app
    with TestClient(create_app(ort_service)) as c:
        yield c


def test_the_options_default_and_a_bad_backend(served):
    assert ServeOptions(checkpoint=served.ckpt).backend == "torch"
    from taxdet.core.errors import ConfigError
    from taxdet.detection.serving.prelabel_service import inference_backend
    with pytest.raises(ConfigError, match="tensorrt"):
        inference_backend(dataclasses.replace(served.options, backend="tensorrt"), None, {})


def test_raw_outputs_agree_with_torch(served, ort_service):
    """One mixed batch: the trunk's boxes and each image's head logits."""
    images = np.random.default_rng(0).uniform(0, 255, (3, 3, ort_service.image_size,
                                                       ort_service.image_size))
    customers = ["customer_b", "customer_c", "customer_b"]
    b_torch, l_torch = served.service.backend.raw(images.astype(np.float32), customers)
    b_ort, l_ort = ort_service.backend.raw(images.astype(np.float32), customers)
    np.testing.assert_allclose(b_ort, b_torch, atol=1e-2, rtol=1e-4)
    for got, want in zip(l_ort, l_torch):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, atol=2e-3, rtol=1e-4)


@pytest.mark.parametrize("customer", ["customer_a", "customer_b", "customer_c"])
def test_onnxruntime_regions_equal_torch_regions(client, ort_client, served, customer):
    want = served_boxes(client, served, customer)
    got = served_boxes(ort_client, served, customer)
    assert set(got) == set(want) and sum(len(r) for r in want.values()) > 0
    for name in want:
        assert_same(got[name], want[name])


def test_a_mixed_batch_equals_one_customer_at_a_time(ort_service, served):
    """Rows of several customers in one forward pass give each its own head's detections."""
    from taxdet.detection.export.runtime import letterbox
    from taxdet.detection.serving.image_fetch import decode_rgb
    from tests.detection.serving.conftest import image_path
    rgb = decode_rgb(image_path(served.root, served.local[0]).read_bytes(), 10**8, "img0")
    boxed, scale = letterbox(rgb, ort_service.image_size)
    items = [ImageItem(boxed, scale, rgb.shape[:2], c) for c in ("customer_b", "customer_c")]
    mixed = ort_service.run_batch(items)
    for item, dets in zip(items, mixed):
        alone = ort_service.run_batch([item])[0]
        np.testing.assert_allclose(dets.boxes, alone.boxes, atol=1e-3)
        np.testing.assert_array_equal(dets.classes, alone.classes)


def test_predict_answers_like_the_torch_backend(ort_client, served):
    body = {"tasks": tasks_of(served.local), "project": "3.1",
            "label_config": labeling_config(LABELS["customer_a"])}
    r = ort_client.post("/predict", json=body)
    assert r.status_code == 200
    assert len(r.json()["results"]) == len(served.local)


@pytest.mark.parametrize("customer", ["customer_c", None])
def test_predict_py_onnxruntime_equals_torch(run_tool, served, tmp_path, customer):
    """customer_c: a parent label scored over its descendants; None: the super-taxonomy's
    full head. The default backend is torch."""
    from taxdet.tools import predict
    assert predict.parse_args(["--checkpoint", "c.pt", "x.png"]).backend == "torch"
    want = file_boxes(predict_py(run_tool, served, tmp_path / "torch", customer))
    got = file_boxes(predict_py(run_tool, served, tmp_path / "ort", customer,
                                "--backend", "onnxruntime", "--threads", "1"))
    assert set(got) == set(want) and sum(len(r) for r in want.values()) > 0
    for name in want:
        assert_same(got[name], want[name])


def test_a_full_head_answers_like_the_sliced_one(served, client):
    """``ServeOptions.full_heads`` (the benchmark's full-head model): every head computes all
    K columns, and the customer's regions stay the same."""
    from fastapi.testclient import TestClient

    from taxdet.detection.serving.serve_app import create_app
    full = PrelabelService(dataclasses.replace(served.options, full_heads=True))
    K = full.taxset.num_classes
    assert all(len(h.columns) == K for h in full.heads.values())
    assert full.heads["customer_c"].outputs == served.service.heads["customer_c"].outputs
    with TestClient(create_app(full)) as full_client:
        want = served_boxes(client, served, "customer_c")
        got = served_boxes(full_client, served, "customer_c")
    assert set(got) == set(want)
    for name in want:
        assert_same(got[name], want[name])
