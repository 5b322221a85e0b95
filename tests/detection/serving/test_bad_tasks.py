"""Bad tasks get a 4xx naming the task while the others are served; images are read within
limits, never outside --images-root, and only over http(s) or Label Studio's paths; access by
bearer token or basic auth."""

from __future__ import annotations

import asyncio
import base64
import os

import httpx
import pytest
from fastapi.testclient import TestClient

from taxdet.detection.serving.image_fetch import FetchLimits, ImageFetcher, TaskError
from taxdet.detection.serving.serve_app import Access, create_app
from tests.detection.serving.test_protocol import predict, tasks_of

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("url, status, words", [
    ("/data/local-files/?d=pics/notes.png", 422, "not a readable image"),
    ("/data/local-files/?d=pics/missing.png", 404, "no such file"),
    ("/data/local-files/?d=../outside.png", 403, "outside --images-root"),
    ("/data/local-files/?d=/etc/passwd", 404, "no such file"),  # absolute: still under the root
    ("/data/upload/../../outside.png", 403, "outside --images-root"),
    ("file:///etc/passwd", 400, "unsupported URL"),
    ("s3://bucket/key.png", 400, "unsupported URL"),
    ("pics/img0.png", 400, "unsupported URL"),
    ("/etc/passwd", 400, "unsupported URL"),
    (12, 400, "not a URL"),
])
def test_a_bad_task_is_a_4xx_naming_it_and_the_good_ones_are_still_served(client, served, url,
                                                                          status, words):
    tasks = tasks_of([served.local[0], url, served.local[1]])
    r = predict(client, tasks)
    assert r.status_code == status
    body = r.json()
    assert [e["task"] for e in body["errors"]] == [101]
    assert body["errors"][0]["message"].startswith("task 101: ") and words in body["detail"]
    assert "Traceback" not in r.text
    # the service goes on: the good tasks alone
    assert predict(client, [tasks[0], tasks[2]]).status_code == 200


def test_a_symlink_out_of_the_root_is_refused(client, served):
    link = served.root / "links" / "link.png"
    if not link.exists():
        link.parent.mkdir(exist_ok=True)
        os.symlink(served.base / "outside.png", link)
    r = predict(client, tasks_of(["/data/local-files/?d=links/link.png"]))
    assert r.status_code == 403 and "task 100" in r.json()["detail"]


def test_a_task_without_the_image_key_is_named(client, served):
    r = predict(client, [{"id": 5, "data": {"picture": served.local[0]}}, {"id": 6}])
    assert r.status_code == 400
    assert [e["task"] for e in r.json()["errors"]] == [5, 6]
    assert "no 'image'" in r.json()["errors"][0]["message"]


@pytest.mark.parametrize("limits, words", [
    (FetchLimits(max_bytes=100), "more than the limit of 100"),
    (FetchLimits(max_pixels=1000), "pixels, more than the limit of 1000"),
])
def test_images_over_the_limits_are_413(client, served, monkeypatch, limits, words):
    monkeypatch.setattr(served.service.fetcher, "limits", limits)
    monkeypatch.setattr(served.service.options, "limits", limits)
    r = predict(client, tasks_of(served.local[:1]))
    assert r.status_code == 413 and words in r.json()["detail"]


def test_a_body_over_the_limit_is_413(served):
    with TestClient(create_app(served.service, max_body_bytes=1000)) as c:
        r = c.post("/predict", json={"tasks": tasks_of(["x" * 2000])})
        assert r.status_code == 413
        assert c.get("/health").status_code == 200


def test_bearer_token_and_basic_auth(served):
    app = create_app(served.service, Access(token="s3cret", basic="ls:pa:ss"))
    good_basic = "Basic " + base64.b64encode(b"ls:pa:ss").decode()
    bad_basic = "Basic " + base64.b64encode(b"ls:wrong").decode()
    with TestClient(app) as c:
        for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": bad_basic},
                        {"Authorization": "Token s3cret"}):
            r = c.get("/health", headers=headers)
            assert r.status_code == 401 and "www-authenticate" in r.headers
            assert predict(c, tasks_of(served.local[:1])).status_code == 401
        assert c.get("/health", headers={"Authorization": "Bearer s3cret"}).status_code == 200
        r = c.post("/setup", headers={"Authorization": good_basic},
                   json={"project": "3.1", "schema": "<View/>"})
        assert r.status_code == 422  # through the door, then refused for its config


def fetch(fetcher, url):
    return asyncio.run(fetcher.read(url))


def test_http_images_are_fetched_and_the_key_goes_only_to_label_studio(served):
    png = (served.root / "pics/img0.png").read_bytes()
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if request.url.path.endswith("redirect.png"):
            return httpx.Response(302, headers={"location": "http://ls.local:8080/x.png"})
        if request.url.path.endswith("big.png"):
            return httpx.Response(200, content=b"x" * 200_000)
        return httpx.Response(200, content=png)
    fetcher = ImageFetcher(None, "http://ls.local:8080", "abc123", FetchLimits(max_bytes=100_000),
                           httpx.MockTransport(handler))
    assert fetch(fetcher, "/data/upload/1/a.png") == png
    assert fetch(fetcher, "/data/local-files/?d=pics/a.png") == png
    assert fetch(fetcher, "https://images.example/b.png") == png
    assert seen == [("http://ls.local:8080/data/upload/1/a.png", "Token abc123"),
                    ("http://ls.local:8080/data/local-files/?d=pics/a.png", "Token abc123"),
                    ("https://images.example/b.png", None)]
    with pytest.raises(TaskError, match="answered 302") as exc:
        fetch(fetcher, "https://images.example/redirect.png")  # redirects are not followed
    assert exc.value.status == 424
    with pytest.raises(TaskError, match="limit of 100000") as exc:
        fetch(fetcher, "https://images.example/big.png")
    assert exc.value.status == 413


def test_unreachable_images_are_424_and_paths_need_an_address(served):
    def down(request):
        raise httpx.ConnectError("connection refused")
    fetcher = ImageFetcher(None, None, None, FetchLimits(), httpx.MockTransport(down))
    with pytest.raises(TaskError, match="cannot fetch.*ConnectError") as exc:
        fetch(fetcher, "http://127.0.0.1:1/a.png")
    assert exc.value.status == 424
    with pytest.raises(TaskError, match="neither --images-root nor --label-studio-url"):
        fetch(fetcher, "/data/upload/1/a.png")
    fetcher.set_label_studio("http://localhost:8080", "tok")  # what /setup sends
    assert (fetcher.ls_url, fetcher.ls_token) == ("http://localhost:8080", "tok")
    flags = ImageFetcher(None, "http://ls:1", "flag", FetchLimits())
    flags.set_label_studio("http://other:2", "sent")  # flags win over /setup
    assert (flags.ls_url, flags.ls_token) == ("http://ls:1", "flag")
