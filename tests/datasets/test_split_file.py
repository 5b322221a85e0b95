"""split.json: the record of which images a run trained and validated on, read back checked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from taxdet.datasets.sample import Sample
from taxdet.datasets.split import SplitConfig, assign_split, split_image, write_split
from taxdet.detection.evaluation.run_split import read_split


def sample(i: int, **kw) -> Sample:
    return Sample(i, f"/data/img/{i:03d}.png", 64, 48, "customer_a", np.ones(7, bool),
                  content_hash=f"{i:064x}", source_image_id=100 + i, **kw)


def test_split_json_lists_each_side_with_ids_hashes_and_source_ids(tmp_path):
    cfg = SplitConfig(val_fraction=0.3, salt="s1")
    samples = [sample(i) for i in range(1, 21)]
    train, val = assign_split(samples, cfg)
    assert train and val
    write_split(tmp_path / "split.json", train, val, cfg)
    doc = json.loads((tmp_path / "split.json").read_text())
    assert {k: doc[k] for k in ("format", "val_fraction", "salt", "by")} == {
        "format": 1, "val_fraction": 0.3, "salt": "s1", "by": "content"}
    assert [r["id"] for r in doc["train"]] == [s.image_id for s in train]
    assert [r["id"] for r in doc["val"]] == [s.image_id for s in val]
    assert doc["val"][0] == {"id": val[0].image_id, "file_name": val[0].file,
                             "content_hash": val[0].content_hash,
                             "source_image_id": val[0].source_image_id}
    back = read_split(tmp_path / "split.json")          # the reader evaluate.py --run uses
    assert [e.id for e in back.side("val")] == [s.image_id for s in val]
    assert back.val[0].content_hash == val[0].content_hash and back.salt == "s1"


def test_source_file_is_written_when_the_sample_has_one():
    s = sample(1)
    if not hasattr(s, "source_file"):
        pytest.skip("this Sample has no source_file")
    s.source_file = "/data/customer_a/annotations.json"
    assert split_image(s)["source_file"] == "/data/customer_a/annotations.json"


def test_an_empty_side_is_an_empty_list(tmp_path):
    cfg = SplitConfig(val_fraction=0.0)
    write_split(tmp_path / "split.json", [sample(1)], [], cfg)
    back = read_split(tmp_path / "split.json")
    assert [e.id for e in back.train] == [1] and back.val == []
