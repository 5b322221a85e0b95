"""Hierarchy-consistent decoding of exported models: the label map carries the hierarchy among
the outputs and the NumPy post-processing scores each parent output as the max over its
descendant outputs, like ``taxdet.detection.prediction.hierarchy_decoding`` in torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from taxdet.detection.export.exporter import (
    LabelMapError,
    build_export,
    label_map,
    label_map_path,
    output_hierarchy,
    read_label_map,
    write_export,
)
from taxdet.detection.export.postprocess import (
    PostprocessConfig,
    apply_hierarchy,
    detect_batch,
    hierarchy_problem,
)
from taxdet.detection.export.runtime import ExportedModel, letterbox
from taxdet.detection.model.hierarchy_scores import hierarchy_max
from tests.detection.export.export_cases import sample_images
from tests.factories import TINY_SIZE

pytestmark = pytest.mark.usefixtures("one_thread")

# person = max(person, adult, child); vehicle = max(vehicle, car, truck)
FULL = ((0, 1, 2), (3, 4, 5))


@pytest.fixture(scope="module")
def onnx_full(confident_ckpt, tmp_path_factory):
    """The full head exported to ONNX with the default (auto: on) decoding."""
    exported = build_export(confident_ckpt)
    path = tmp_path_factory.mktemp("hier") / "full.onnx"
    write_export(exported, path, "onnx")
    return exported, ExportedModel(path)


def test_output_hierarchy_follows_the_exported_columns(taxset):
    assert output_hierarchy(tuple(range(7)), taxset.ancestors) == FULL
    assert output_hierarchy((1, 2, 4, 5), taxset.ancestors) == ()  # customer_b: leaves only
    # outputs 0..3 = columns person, adult, vehicle, truck: each parent keeps its own child
    assert output_hierarchy((0, 1, 3, 5), taxset.ancestors) == ((0, 1), (2, 3))


def test_numpy_rule_equals_the_torch_rule(taxset):
    logits = np.random.default_rng(0).normal(0, 3, (500, 7)).astype(np.float32)
    want = hierarchy_max(torch.from_numpy(logits), taxset.ancestors).numpy()
    np.testing.assert_array_equal(apply_hierarchy(logits, FULL), want)
    assert apply_hierarchy(logits, ()) is logits


def test_export_is_on_by_default_and_can_be_switched_off(onnx_full, confident_ckpt):
    exported, model = onnx_full
    assert exported.post.hierarchy == FULL
    assert model.post.hierarchy == FULL  # read back from the written label map
    written = read_label_map(label_map_path(model.path))["postprocess"]
    assert written["hierarchy"] == [[0, 1, 2], [3, 4, 5]]
    off = build_export(confident_ckpt, hierarchy_decoding=False)
    assert off.post.hierarchy == ()
    assert label_map(off, "x.onnx", "onnx")["postprocess"]["hierarchy"] == []
    assert build_export(confident_ckpt, customer="customer_c").post.hierarchy == ()


def test_exported_detections_use_the_hierarchy(onnx_full):
    """The runtime's detections are the raw outputs' detections after the NumPy rule; a parent
    output then has a detection at every box where its best child has one, with its score."""
    _, model = onnx_full
    boxed = [letterbox(im, TINY_SIZE) for im in sample_images()]
    images = np.stack([b for b, _ in boxed])
    scales, sizes = [s for _, s in boxed], [im.shape[:2] for im in sample_images()]
    boxes, logits = model.raw(images)
    got = model.detect(images, scales, sizes)
    maxed = np.stack([apply_hierarchy(lg, FULL) for lg in logits])
    plain = PostprocessConfig()
    want = detect_batch(boxes, maxed, scales, sizes, plain)
    without = detect_batch(boxes, logits, scales, sizes, plain)
    for g, w, n in zip(got, want, without):
        np.testing.assert_array_equal(g.classes, w.classes)
        np.testing.assert_array_equal(g.scores, w.scores)
        # without the rule, the parents' scores are their own, lower ones
        assert sorted(g.scores[g.classes == 0])[-1] > sorted(n.scores[n.classes == 0])[-1]


@pytest.mark.parametrize("bad, message", [
    ({"a": 1}, "must be a list, got dict"),
    ([[0]], "entry [0] is not a list of 2 or more distinct output indices in 0..6"),
    ([[0, 7]], "entry [0, 7] is not"),
    ([[1, 1]], "entry [1, 1] is not"),
    ([[0, True]], "entry [0, True] is not"),
])
def test_a_bad_hierarchy_in_a_label_map_is_refused(onnx_full, tmp_path, bad, message):
    assert message in hierarchy_problem(bad, 7)
    _, model = onnx_full
    data = read_label_map(label_map_path(model.path))
    data["postprocess"]["hierarchy"] = bad
    path = tmp_path / "bad.labels.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LabelMapError, match="'postprocess.hierarchy'"):
        read_label_map(path)


def test_label_map_without_hierarchy_still_reads_as_off(onnx_full, tmp_path):
    _, model = onnx_full
    data = read_label_map(label_map_path(model.path))
    del data["postprocess"]["hierarchy"]  # written before the option existed
    path = tmp_path / "old.labels.json"
    path.write_text(json.dumps(data))
    assert PostprocessConfig(**read_label_map(path)["postprocess"]).hierarchy == ()
