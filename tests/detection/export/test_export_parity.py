"""Exported models (ONNX through onnxruntime, TorchScript through torch.jit.load) give the
checkpoint's detections, for the full head and a customer's sliced head."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from taxdet.core.errors import ConfigError
from taxdet.datasets.transforms import normalize
from taxdet.detection.export.exporter import (
    LabelMapError,
    build_export,
    label_map,
    label_map_path,
    read_label_map,
    write_export,
)
from taxdet.detection.export.runtime import ExportedModel, letterbox
from taxdet.detection.export.sliced_head import customer_outputs, slice_class_head
from taxdet.detection.model.detector_wrappers import Detections, PredictBench
from taxdet.detection.prediction.predictor import load_predictor
from tests.detection.export.export_cases import IMAGE_SIZES, sample_images
from tests.factories import TINY_SIZE

pytestmark = pytest.mark.usefixtures("one_thread")

FORMATS = {"onnx": ".onnx", "torchscript": ".pt"}
CUSTOMERS = (None, "customer_b")


@pytest.fixture(scope="module")
def batch():
    """Letterboxed images [B, 3, S, S] float32 0..255, scales [B], original sizes [B, 2]."""
    images = sample_images()
    boxed = [letterbox(im, TINY_SIZE) for im in images]
    return (np.stack([b for b, _ in boxed]), np.array([s for _, s in boxed], np.float32),
            np.array(IMAGE_SIZES))


@pytest.fixture(scope="module")
def exported(confident_ckpt, tmp_path_factory):
    """{(customer, format): ExportedModel} and {customer: Exported}, without hierarchy-consistent
    decoding: its parent/child score ties are ordered arbitrarily by torch's top-k and NMS
    (tests/detection/export/test_export_hierarchy.py covers it)."""
    out = tmp_path_factory.mktemp("exports")
    models, nets = {}, {}
    for customer in CUSTOMERS:
        nets[customer] = build_export(confident_ckpt, customer=customer, hierarchy_decoding=False)
        for fmt, suffix in FORMATS.items():
            path = out / f"{customer or 'full'}{suffix}"
            write_export(nets[customer], path, fmt)
            models[customer, fmt] = ExportedModel(path)
    return models, nets


def checkpoint_detections(ckpt, batch, customer: str | None) -> list[Detections]:
    """The checkpoint's detections: ``PredictBench`` for the full head; for a customer,
    ``PredictBench`` on the full model with its class head cut to that customer's columns."""
    predictor, taxset, _ = load_predictor(ckpt, hierarchy_decoding=False)
    images, scales, sizes = (torch.from_numpy(a) for a in batch)
    x = normalize(images)
    if customer is not None:
        cols = customer_outputs(taxset, customer).columns
        predictor = PredictBench(slice_class_head(predictor.model, cols)).eval()
    return predictor(x, scales, sizes)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
@pytest.mark.parametrize("customer", CUSTOMERS)
def test_exported_detections_equal_the_checkpoints(exported, confident_ckpt, batch, customer,
                                                   fmt):
    want = checkpoint_detections(confident_ckpt, batch, customer)
    got = exported[0][customer, fmt].detect(*batch)
    assert len(got) == len(want) == len(IMAGE_SIZES)
    for g, w in zip(got, want):
        assert len(g.scores) == len(w.scores) > 10
        np.testing.assert_array_equal(g.classes, w.classes.numpy())
        np.testing.assert_allclose(g.boxes, w.boxes.numpy(), atol=1e-4, rtol=0)
        np.testing.assert_allclose(g.scores, w.scores.numpy(), atol=1e-4, rtol=0)
    if customer:
        assert {int(c) for g in got for c in g.classes} <= set(range(4))


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_sliced_outputs_equal_the_full_outputs_at_the_customers_columns(exported, batch, fmt):
    models, nets = exported
    boxes, logits = models[None, fmt].raw(batch[0])
    cut_boxes, cut_logits = models["customer_b", fmt].raw(batch[0])
    cols = list(nets["customer_b"].outputs.columns)
    np.testing.assert_allclose(cut_logits, logits[..., cols], atol=1e-4, rtol=0)
    np.testing.assert_allclose(cut_boxes, boxes, atol=1e-4, rtol=0)
    assert cut_logits.shape == (len(IMAGE_SIZES), boxes.shape[1], 4)


def test_label_map_names_outputs_and_not_predicted_labels(exported, confident_ckpt, taxset):
    models, nets = exported
    written = read_label_map(label_map_path(models["customer_b", "onnx"].path))
    assert written["model_file"] == "customer_b.onnx" and written["customer"] == "customer_b"
    assert [c["labels"] for c in written["classes"]] == [["Pedestrian_adult"],
                                                         ["Pedestrian_child"], ["Car"], ["Truck"]]
    assert written["outputs"]["class_logits"]["shape"] == ["B", 3069, 4]  # 9 x 341 anchors
    assert written["input"]["shape"] == ["B", 3, TINY_SIZE, TINY_SIZE]
    a = label_map(build_export(confident_ckpt, customer="customer_a"), "a.onnx", "onnx")
    assert a["classes"] == [{"index": 0, "labels": ["Human"], "super_class": "person",
                             "column": 0}]
    assert a["not_predicted"] == ["Dog"]
    full = read_label_map(label_map_path(models[None, "torchscript"].path))
    assert [c["super_class"] for c in full["classes"]] == taxset.names
    assert full["customer"] is None and full["not_predicted"] == []


def test_read_label_map_refuses_other_json(tmp_path):
    path = tmp_path / "x.labels.json"
    path.write_text(json.dumps({"format": "coco"}))
    with pytest.raises(LabelMapError, match="not a label map"):
        read_label_map(path)
    with pytest.raises(LabelMapError, match="not found"):
        read_label_map(tmp_path / "missing.json")


def test_another_image_size_rebuilds_the_anchors(confident_ckpt):
    big = build_export(confident_ckpt, image_size=2 * TINY_SIZE)
    assert big.image_size == 256 and big.net.anchors.shape[0] == 9 * (32 ** 2 + 16 ** 2 + 8 ** 2
                                                                      + 4 ** 2 + 2 ** 2)
    with torch.no_grad():
        boxes, logits = big.net(torch.zeros(1, 3, 256, 256))
    assert boxes.shape == (1, big.net.anchors.shape[0], 4)
    with pytest.raises(ConfigError, match="image size 200 must be a positive multiple of 128"):
        build_export(confident_ckpt, image_size=200)
