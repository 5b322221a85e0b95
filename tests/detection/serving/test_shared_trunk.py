"""The shared trunk's per-customer output equals ``tools/predict.py --customer`` for the same
images: same labels, boxes within 1 px, scores within 1e-3 (hierarchy decoding on, so
customer_c's parent label Vehicle is scored over car and truck too); and concurrent requests
of different customers share batches."""

from __future__ import annotations

import asyncio
import json
from collections import Counter

import numpy as np
import pytest

from taxdet.detection.export.shared_trunk import head_columns
from taxdet.detection.serving.dynamic_batcher import DynamicBatcher
from tests.detection.serving.conftest import labeling_config
from tests.detection.serving.test_protocol import tasks_of

pytestmark = pytest.mark.usefixtures("one_thread")

LABELS = {"customer_a": ["Human", "Dog"], "customer_b": ["Pedestrian_adult", "Pedestrian_child",
                                                         "Car", "Truck"],
          "customer_c": ["Vehicle", "Traffic_light"]}
RUN = ("--device", "cpu", "--workers", "0", "--format", "coco")
# high enough that the full model keeps fewer than 100 detections per image (its cap)
PARITY_SCORE = 0.5


def predict_py(run_tool, served, tmp_path, customer=None, *more: str) -> dict:
    """predict.py's COCO file (``more``: extra flags, e.g. ``--backend onnxruntime``)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    out = tmp_path / f"{customer}.json"
    extra: tuple = ()
    if customer:  # predict.py writes a customer's own ids only: give them (1..L here)
        cats = tmp_path / f"{customer}_categories.json"
        cats.write_text(json.dumps({"images": [], "annotations": [], "categories": [
            {"id": i + 1, "name": n} for i, n in enumerate(LABELS[customer])]}))
        extra = ("--customer", customer, "--categories", cats)
    code, _, err = run_tool("predict", "--checkpoint", served.ckpt, "--images",
                            served.root / "pics", "--score-threshold", PARITY_SCORE, "--out", out,
                            *extra, *RUN, *more)
    assert code == 0, err
    return json.loads(out.read_text())


def served_boxes(client, served, customer) -> dict[str, list]:
    """file name -> [(label, [x, y, w, h] pixels, score)] from /predict."""
    r = client.post("/predict", json={"tasks": tasks_of(served.local), "project": "3.1",
                                      "label_config": labeling_config(LABELS[customer])})
    assert r.status_code == 200
    out = {}
    for url, pred in zip(served.local, r.json()["results"]):
        rows = []
        for reg in pred["result"]:
            v, w, h = reg["value"], reg["original_width"], reg["original_height"]
            box = [v["x"] * w / 100, v["y"] * h / 100, v["width"] * w / 100, v["height"] * h / 100]
            rows.append((v["rectanglelabels"][0], box, reg["score"]))
        out[url.split("/")[-1]] = rows
    return out


def file_boxes(coco: dict) -> dict[str, list]:
    """file name -> [(label, bbox, score)] of a predict.py COCO file (boxes of 1 px or more)."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    files = {i["id"]: i["file_name"] for i in coco["images"]}
    out: dict[str, list] = {f: [] for f in files.values()}
    for a in coco["annotations"]:
        if a["bbox"][2] >= 1 and a["bbox"][3] >= 1:
            out[files[a["image_id"]]].append((names[a["category_id"]], a["bbox"], a["score"]))
    return out


def assert_same(got: list, want: list) -> None:
    key = lambda row: (row[0], -row[2])  # noqa: E731
    got, want = sorted(got, key=key), sorted(want, key=key)
    assert [g[0] for g in got] == [w[0] for w in want]
    np.testing.assert_allclose([g[1] for g in got], [w[1] for w in want], atol=1.0, rtol=0)
    np.testing.assert_allclose([g[2] for g in got], [w[2] for w in want], atol=1e-3, rtol=0)


@pytest.mark.parametrize("customer", ["customer_b", "customer_c", "customer_a"])
def test_shared_trunk_equals_predict_py_customer(client, served, run_tool, tmp_path, customer,
                                                monkeypatch):
    monkeypatch.setattr(served.service.options, "score_threshold", PARITY_SCORE)
    full = file_boxes(predict_py(run_tool, served, tmp_path))
    # the condition under which the full model's 100-detection cap cannot differ (module doc of
    # taxdet.detection.export.shared_trunk): fewer than 100 detections over every class
    assert all(len(rows) < 100 for rows in full.values())
    want = file_boxes(predict_py(run_tool, served, tmp_path, customer))
    got = served_boxes(client, served, customer)
    assert sum(len(rows) for rows in want.values()) > 0
    assert set(got) == set(want)
    for name in want:
        assert_same(got[name], want[name])


def test_a_parent_labels_head_carries_its_descendant_columns(served, taxset):
    col = {n: j for j, n in enumerate(taxset.names)}
    head = served.service.heads["customer_c"]
    assert head.outputs.columns == (col["vehicle"], col["traffic_light"])
    assert head.columns == (col["vehicle"], col["traffic_light"], col["car"], col["truck"])
    assert head.hierarchy == ((0, 2, 3),)
    assert head_columns((col["car"],), taxset.ancestors, True) == (col["car"],)
    assert head_columns((col["person"],), taxset.ancestors, False) == (col["person"],)
    # a head's last conv has the head's outputs only: 9 anchors x 4 columns
    assert head.class_net.predict.conv_pw.out_channels == 9 * 4


def test_concurrent_requests_of_different_customers_share_batches(served):
    from fastapi.testclient import TestClient

    from taxdet.detection.serving.serve_app import create_app
    service = served.service
    service.batcher.batch_sizes.clear()
    with TestClient(create_app(service)):
        async def both():
            bodies = [{"tasks": tasks_of(served.local), "project": f"{p}.1",
                       "label_config": labeling_config(LABELS[c])}
                      for p, c in ((3, "customer_b"), (4, "customer_c"))]
            return await asyncio.gather(*(service.predict(b) for b in bodies))
        outcomes = asyncio.run(both())
    assert [o[0] for o in outcomes] == [200, 200]
    assert max(service.batcher.batch_sizes) > 3  # both requests' images in one forward pass
    assert sum(service.batcher.batch_sizes) == 6


def test_batcher_caps_batches_and_isolates_a_failing_batch():
    calls = []

    def run(items):
        calls.append(list(items))
        if "bad" in items:
            raise ValueError("boom")
        return [i * 2 for i in items]

    async def go():
        batcher = DynamicBatcher(run, max_batch=3, max_wait_ms=50)
        first = await asyncio.gather(*(batcher.submit(i) for i in range(7)))
        failed = await asyncio.gather(batcher.submit("bad"), return_exceptions=True)
        after = await batcher.submit(5)
        await batcher.close()
        return first, failed, after
    first, failed, after = asyncio.run(go())
    assert first == [0, 2, 4, 6, 8, 10, 12]
    assert Counter(len(c) for c in calls[:3]) == Counter([3, 3, 1])
    assert isinstance(failed[0], ValueError) and after == 10
