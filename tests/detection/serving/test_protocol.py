"""Label Studio's ML backend protocol: health, setup, predict, webhook; customers by labels and
by --project; errors that name the project or the task, never a traceback."""

from __future__ import annotations

import logging

import pytest

from taxdet.detection.serving.project_customers import CustomerMap, CustomerMatchError
from tests.detection.serving.conftest import labeling_config

pytestmark = pytest.mark.usefixtures("one_thread")

B_LABELS = ["Pedestrian_adult", "Pedestrian_child", "Car", "Truck"]
C_LABELS = ["Vehicle", "Traffic_light"]


def predict(client, tasks, labels=B_LABELS, project="3.1700000000", **extra):
    body = {"tasks": tasks, "project": project, "model_version": "x", "params": {},
            **({"label_config": labeling_config(labels)} if labels is not None else {}), **extra}
    return client.post("/predict", json=body)


def tasks_of(urls):
    return [{"id": 100 + i, "data": {"image": u}} for i, u in enumerate(urls)]


def test_health_and_metrics_answer_like_the_sdk(client, served):
    body = client.get("/health").json()
    assert body["status"] == "UP" and body["model_class"]
    assert body["customers"] == ["customer_a", "customer_b", "customer_c"]
    assert client.get("/").json()["status"] == "UP"
    assert client.get("/metrics").json() == {}


def test_setup_answers_the_model_version_and_remembers_the_project(client, served):
    r = client.post("/setup", json={"project": "5.1700000000", "schema": labeling_config(C_LABELS),
                                    "hostname": "http://localhost:8080", "access_token": "k"})
    assert r.status_code == 200 and r.json() == {"model_version": served.service.model_version}
    # /predict without label_config uses the config /setup gave for project 5
    r = predict(client, tasks_of(served.local[:1]), labels=None, project="5.1700000000")
    assert r.status_code == 200
    labels = {lab for reg in r.json()["results"][0]["result"]
              for lab in reg["value"]["rectanglelabels"]}
    assert labels and labels <= set(C_LABELS)


def test_predict_answers_one_prediction_per_task_with_regions_score_and_version(client, served):
    r = predict(client, tasks_of(served.local))
    assert r.status_code == 200
    body = r.json()
    assert body["model_version"] == served.service.model_version
    assert len(body["results"]) == 3
    for pred in body["results"]:
        assert set(pred) == {"result", "score", "model_version"}
        assert pred["model_version"] == served.service.model_version
        assert pred["result"], "the confident checkpoint detects something in every image"
        scores = [reg["score"] for reg in pred["result"]]
        assert pred["score"] == pytest.approx(sum(scores) / len(scores), abs=1e-4)
        for reg in pred["result"]:
            assert reg["type"] == "rectanglelabels"
            assert (reg["from_name"], reg["to_name"]) == ("label", "image")
            v = reg["value"]
            assert v["rectanglelabels"][0] in B_LABELS and reg["score"] >= 0.2
            assert 0 <= v["x"] and v["x"] + v["width"] <= 100 + 1e-6
            assert 0 <= v["y"] and v["y"] + v["height"] <= 100 + 1e-6
            assert v["width"] * reg["original_width"] / 100 >= 1
            assert v["height"] * reg["original_height"] / 100 >= 1


def test_uploaded_files_are_read_from_the_upload_folder(client, served):
    r = predict(client, tasks_of(["/data/upload/1/img1.png"]))
    assert r.status_code == 200
    same = predict(client, tasks_of([served.local[1]])).json()["results"][0]
    assert r.json()["results"][0] == same


@pytest.mark.parametrize("labels, customer_labels", [
    (["Human", "Dog"], {"Human"}),   # customer_a: Dog is maps_to: null, but in its label set
    (list(reversed(B_LABELS)), set(B_LABELS)),
    (C_LABELS, set(C_LABELS)),
])
def test_a_project_is_its_customer_by_its_label_set(client, served, labels, customer_labels):
    r = predict(client, tasks_of(served.local[:2]), labels=labels)
    assert r.status_code == 200
    got = {lab for p in r.json()["results"] for reg in p["result"]
           for lab in reg["value"]["rectanglelabels"]}
    assert got and got <= customer_labels


def test_project_flag_wins_over_the_labels(client, served):
    # --project 7=customer_a: any labels, even none at all in /setup
    r = predict(client, tasks_of(served.local[:1]), labels=["Cat"], project="7.1700000000")
    assert r.status_code == 200
    got = {lab for reg in r.json()["results"][0]["result"]
           for lab in reg["value"]["rectanglelabels"]}
    assert got == {"Human"}


def test_unknown_labels_are_an_error_naming_the_project_and_the_customers(client):
    for route, key in (("/predict", "label_config"), ("/setup", "schema")):
        body = {"tasks": tasks_of(["/data/local-files/?d=pics/img0.png"]), "project": "4.1",
                key: labeling_config(["Car", "Bus"])}
        r = client.post(route, json=body)
        assert r.status_code == 422
        detail = r.json()["detail"]
        assert "project '4'" in detail and "no customer's label set" in detail
        assert "customer_b" in detail and "--project" in detail


def test_ambiguous_labels_are_an_error_not_a_guess():
    both = frozenset({"Car", "Truck"})
    cmap = CustomerMap({"north": both, "south": both, "east": frozenset({"Car"})}, {})
    with pytest.raises(CustomerMatchError, match="ambiguous.*north, south.*--project"):
        cmap.by_labels(("Truck", "Car"))
    assert cmap.by_labels(("Car",)) == "east"
    assert CustomerMap({"north": both, "south": both}, {"9": "south"}).resolve("9.5", None) == \
        "south"


def test_a_config_without_rectangle_labels_is_refused(client, served):
    xml = '<View><Image name="image" value="$image"/><Choices name="c" toName="image"/></View>'
    r = client.post("/predict", json={"tasks": tasks_of(served.local[:1]), "project": "3.1",
                                      "label_config": xml})
    assert r.status_code == 422 and "RectangleLabels" in r.json()["detail"]
    r = client.post("/predict", json={"tasks": tasks_of(served.local[:1]), "project": "3.1",
                                      "label_config": "<View><Image"})
    assert r.status_code == 422 and "not valid XML" in r.json()["detail"]


def test_webhook_is_accepted_and_logged(client, caplog):
    with caplog.at_level(logging.INFO, logger="taxdet"):
        r = client.post("/webhook", json={"action": "ANNOTATION_CREATED",
                                          "project": {"id": 3, "label_config": "<View/>"}})
    assert r.status_code == 201 and r.json() == {"result": None, "status": "ok"}
    assert any("/webhook 201" in m and "ANNOTATION_CREATED" in m for m in caplog.messages)
    r = client.post("/webhook", json={"action": "PROJECT_UPDATED"})
    assert r.status_code == 200 and r.json() == {"status": "Unknown event"}


def test_one_log_line_per_request(client, served, caplog):
    with caplog.at_level(logging.INFO, logger="taxdet"):
        predict(client, tasks_of(served.local[:2]))
    lines = [m for m in caplog.messages if m.startswith("POST /predict")]
    assert len(lines) == 1
    assert "200" in lines[0] and "customer customer_b" in lines[0] and "tasks 2" in lines[0]


def test_bad_bodies_are_400(client):
    r = client.post("/predict", content=b"{not json", headers={"content-type":
                                                                "application/json"})
    assert r.status_code == 400 and "not JSON" in r.json()["detail"]
    assert client.post("/predict", json=[1, 2]).status_code == 400
    r = client.post("/predict", json={"tasks": [], "project": "3.1"})
    assert r.status_code == 400 and "tasks" in r.json()["detail"]


def test_an_internal_error_is_a_plain_500_and_the_service_goes_on(client, served, monkeypatch,
                                                                  caplog):
    def broken(items):
        raise RuntimeError("secret internals")
    monkeypatch.setattr(served.service.batcher, "run_batch", broken)
    with caplog.at_level(logging.ERROR, logger="taxdet"):
        r = predict(client, tasks_of(served.local[:1]))
    assert r.status_code == 500
    assert "secret" not in r.text and "Traceback" not in r.text
    assert any("secret internals" in m for m in caplog.messages)  # the log has it
    monkeypatch.undo()
    assert predict(client, tasks_of(served.local[:1])).status_code == 200
