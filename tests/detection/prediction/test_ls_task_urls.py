"""Label Studio task files: the image URL survives any file name."""

from __future__ import annotations

from urllib.parse import parse_qs, unquote, urlsplit

from taxdet.detection.prediction.customer_labels import LabelSpace
from taxdet.detection.prediction.ls_format import (
    LOCAL_FILES_URL,
    default_config,
    label_studio_tasks,
)

NAMES = ["plain.jpg", "sub dir/a b+c&d#e%f?.png", "ünï/çødé.jpg"]


def _tasks(prefix: str) -> list[dict]:
    images = [{"id": i, "file_name": n, "width": 10, "height": 10} for i, n in enumerate(NAMES)]
    space = LabelSpace("customer_a", "customer_a", [])
    return label_studio_tasks(images, [], space, default_config([]), "v1", prefix)


def test_local_files_urls_give_back_every_file_name_as_the_query_value():
    for task, name in zip(_tasks(LOCAL_FILES_URL), NAMES):
        url = task["data"]["image"]
        assert parse_qs(urlsplit(url).query)["d"] == [name]      # not cut at + & # or ?
        assert task["data"]["file_name"] == name


def test_an_http_prefix_gets_a_percent_encoded_path_that_keeps_its_folders():
    (plain, odd, _) = (t["data"]["image"] for t in _tasks("http://127.0.0.1:8081/img/"))
    assert plain == "http://127.0.0.1:8081/img/plain.jpg"
    assert odd == "http://127.0.0.1:8081/img/sub%20dir/a%20b%2Bc%26d%23e%25f%3F.png"
    assert unquote(urlsplit(odd).path) == "/img/" + NAMES[1]
