"""Coverage decoding of exported models: the label map carries the checkpoint's decoding plan
among the outputs and the NumPy post-processing (ONNX Runtime) scores a descendant-decoded
output from its descendant outputs only and never detects an excluded one, like torch."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from taxdet.detection.engine.checkpoint import load as load_checkpoint
from taxdet.detection.engine.checkpoint import save_atomic
from taxdet.detection.export.exporter import (
    LabelMapError,
    build_export,
    label_map_path,
    output_decoding,
    read_label_map,
    write_export,
)
from taxdet.detection.export.postprocess import PostprocessConfig, detect_batch, plan_problem
from taxdet.detection.export.runtime import ExportedModel, letterbox
from taxdet.detection.model.hierarchy_scores import coverage_matrix, hierarchy_max
from tests.detection.export.export_cases import sample_images
from tests.detection.prediction.test_coverage_decoding import PLAN
from tests.factories import TINY_SIZE

pytestmark = pytest.mark.usefixtures("one_thread")

PERSON, ADULT, CHILD, VEHICLE, CAR, TRUCK, LIGHT = range(7)


@pytest.fixture(scope="module")
def plan_ckpt(confident_ckpt, tmp_path_factory):
    """The export tests' checkpoint with a decoding plan (vehicle descendant-decoded, traffic
    light excluded)."""
    path = tmp_path_factory.mktemp("plan") / "best.pt"
    save_atomic({**load_checkpoint(confident_ckpt), "decoding_plan": PLAN}, path)
    return path


@pytest.fixture(scope="module")
def onnx_plan(plan_ckpt, tmp_path_factory):
    exported = build_export(plan_ckpt)
    path = tmp_path_factory.mktemp("plan_onnx") / "full.onnx"
    write_export(exported, path, "onnx")
    return exported, ExportedModel(path)


def test_the_export_writes_the_plan_among_its_outputs(plan_ckpt, taxset):
    post = build_export(plan_ckpt).post
    assert post.hierarchy == ((PERSON, ADULT, CHILD), (VEHICLE, CAR, TRUCK))
    assert (post.descendant_decoded, post.excluded) == ((VEHICLE,), (LIGHT,))
    plain = build_export(plan_ckpt, hierarchy_decoding="hierarchy").post
    assert (plain.descendant_decoded, plain.excluded) == ((), ())
    assert build_export(plan_ckpt, hierarchy_decoding=False).post == PostprocessConfig()
    # a sliced head: customer_c's outputs are vehicle and traffic_light, with no descendant
    # output to decode vehicle from, so both are excluded
    m = coverage_matrix(taxset.ancestors, taxset.names, PLAN)
    assert output_decoding((VEHICLE, LIGHT), m) == {"hierarchy": (), "descendant_decoded": (),
                                                    "excluded": (0, 1)}


def test_onnx_detections_follow_the_plan_like_torch(onnx_plan, taxset):
    exported, model = onnx_plan
    read = PostprocessConfig(**read_label_map(label_map_path(model.path))["postprocess"])
    assert read == exported.post
    boxed = [letterbox(im, TINY_SIZE) for im in sample_images()]
    images = np.stack([b for b, _ in boxed])
    scales, sizes = [s for _, s in boxed], [im.shape[:2] for im in sample_images()]
    boxes, logits = model.raw(images)
    got = model.detect(images, scales, sizes)
    # the same rule written out by hand, and torch's
    want_logits = logits.copy()
    want_logits[..., VEHICLE] = logits[..., [CAR, TRUCK]].max(-1)
    want_logits[..., PERSON] = logits[..., [PERSON, ADULT, CHILD]].max(-1)
    want_logits[..., LIGHT] = -np.inf
    torch_logits = hierarchy_max(torch.from_numpy(logits),
                                 coverage_matrix(taxset.ancestors, taxset.names, PLAN)).numpy()
    np.testing.assert_array_equal(torch_logits, want_logits)
    want = detect_batch(boxes, want_logits, scales, sizes, PostprocessConfig())
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g.classes, w.classes)
        np.testing.assert_array_equal(g.scores, w.scores)
        assert LIGHT not in g.classes and VEHICLE in g.classes


@pytest.mark.parametrize("key, bad, message", [
    ("excluded", [7], "must be a list of distinct output indices in 0..6"),
    ("excluded", [1, 1], "must be a list of distinct"),
    ("descendant_decoded", [6], "lists outputs [6] that head no 'hierarchy' group"),
])
def test_a_bad_plan_in_a_label_map_is_refused(onnx_plan, tmp_path, key, bad, message):
    _, model = onnx_plan
    data = read_label_map(label_map_path(model.path))
    data["postprocess"][key] = bad
    assert message in plan_problem(data["postprocess"], 7)[1]
    path = tmp_path / "bad.labels.json"
    path.write_text(json.dumps(data))
    with pytest.raises(LabelMapError, match=f"'postprocess.{key}'"):
        read_label_map(path)


def test_a_label_map_without_the_plan_reads_as_before(onnx_plan, tmp_path):
    _, model = onnx_plan
    data = read_label_map(label_map_path(model.path))
    del data["postprocess"]["descendant_decoded"], data["postprocess"]["excluded"]
    path = tmp_path / "old.labels.json"
    path.write_text(json.dumps(data))
    post = PostprocessConfig(**read_label_map(path)["postprocess"])
    assert (post.descendant_decoded, post.excluded) == ((), ())
    assert post.hierarchy == ((PERSON, ADULT, CHILD), (VEHICLE, CAR, TRUCK))
