"""Training on a prepared super.json (``--data``): no merge (the images are only checked once),
the same samples as the merge; checked against the taxonomies; the run folder records the
split; under torchrun rank 0 merges once and the other ranks read its output.

Tiny data: the demo's 3 customers at 128 px (11 images: 7 train, 4 val), D0, batch 2.
"""

from __future__ import annotations

import importlib
import json
import os
import shutil
import socket
from pathlib import Path

import pytest
import torch.multiprocessing as mp

import taxdet.supertax as supertax
from taxdet.core.errors import InputError
from taxdet.datasets import MergeConfig, merge
from taxdet.detection.engine import distributed
from taxdet.detection.evaluation.run_split import read_split
from taxdet.detection.training import train_data
from taxdet.detection.training.trainer import Trainer
from tests.factories import make_tiny_taxonomies
from tests.factories import tiny_train_config as tiny_config

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_tax(tmp_path_factory) -> Path:
    return make_tiny_taxonomies(tmp_path_factory.mktemp("prepared"))


@pytest.fixture(scope="module")
def super_json(tiny_tax, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("data") / "super.json"
    merge(supertax.load([tiny_tax]), MergeConfig())[0].write(path)
    return path


def no_merge(*args, **kwargs):
    raise AssertionError("merged again")


def test_training_on_super_json_does_not_merge_and_gets_the_same_samples(
        tiny_tax, super_json, tmp_path, monkeypatch):
    merged = Trainer(tiny_config(tiny_tax, tmp_path / "merged")).data
    monkeypatch.setattr(train_data, "merge", no_merge)
    monkeypatch.setattr(importlib.import_module("taxdet.datasets.merge"), "check_images", no_merge)
    t = Trainer(tiny_config(tiny_tax, tmp_path / "run", data={"super_json": str(super_json)},
                            optim={"steps": 1}))
    for side in ("train", "val"):
        got, want = getattr(t.data, side).samples, getattr(merged, side).samples
        assert [(s.image_id, s.content_hash, s.boxes.tolist(), s.classes.tolist()) for s in got] \
            == [(s.image_id, s.content_hash, s.boxes.tolist(), s.classes.tolist()) for s in want]
    assert t.fit().step == 1
    report = json.loads((tmp_path / "run" / "merge_report.json").read_text())
    assert report["prepared"] == str(super_json) and report["images"] == 11


def test_the_run_folder_records_the_split_by_super_dataset_id_and_content_hash(
        tiny_tax, super_json, tmp_path):
    t = Trainer(tiny_config(tiny_tax, tmp_path, data={"super_json": str(super_json)}))
    t.write_run_files()
    split = read_split(tmp_path / "split.json")           # the reader of evaluate.py --run
    assert (split.val_fraction, split.salt, split.by) == (0.1, "split-v1", "content")
    assert [e.id for e in split.train] == [s.image_id for s in t.data.train.samples]
    assert [e.id for e in split.val] == [s.image_id for s in t.data.val.samples]
    assert len(split.train) == 7 and len(split.val) == 4
    coco = json.loads(super_json.read_text())
    by_id = {im["id"]: im for im in coco["images"]}
    for e in split.train + split.val:                       # ids are super.json's image ids
        assert e.content_hash == by_id[e.id]["content_hash"]
        assert e.source_image_id == by_id[e.id]["source_image_id"]


def test_super_json_of_other_taxonomies_exits_1_naming_the_taxonomy(
        tiny_tax, super_json, tmp_path, run_tool):
    other = tmp_path / "tax"
    shutil.copytree(tiny_tax, other)
    b = other / "customer_b.yaml"
    b.write_text(b.read_text().replace("box_weight: 2.0", "box_weight: 3.0"))
    code, _, err = run_tool("train", "--data", super_json, "--taxonomies", other, "--output",
                            tmp_path / "run", "--device", "cpu")
    assert code == 1
    assert err.startswith(f"error: {super_json}: merged with other taxonomies")
    assert "taxonomy 'customer_b': hash" in err and str(b) in err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------------------------
# torchrun: rank 0 merges, the others wait and read its output


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rank(rank: int, port: int, tax: str, out: str, results) -> None:
    """One of 2 gloo ranks: ``super_dataset`` with a merge that fails on rank 0 (into out/fail),
    then with one that works (into out/ok); what each rank saw goes to ``results``."""
    import torch.distributed as dist
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=2)
    info, taxset = distributed.DistInfo(rank, 2), supertax.load([tax])
    for case in ("fail", "ok"):
        calls = []

        def counted_merge(*args, **kwargs):
            calls.append(rank)
            if case == "fail":
                raise InputError("customer file is broken")
            return merge(*args, **kwargs)

        train_data.merge = counted_merge
        try:
            ds, report = train_data.super_dataset(tiny_config(Path(tax), Path(out) / case),
                                               taxset, info)
            results.put((case, rank, calls, [s.image_id for s in ds.samples], bool(report), None))
        except InputError as exc:
            results.put((case, rank, calls, None, None, str(exc)))
    dist.destroy_process_group()


@pytest.mark.slow
def test_under_torchrun_only_rank_0_merges_and_the_others_read_its_super_json(tiny_tax, tmp_path):
    ctx = mp.get_context("spawn")
    results, port = ctx.Queue(), free_port()
    procs = [ctx.Process(target=_rank, args=(r, port, str(tiny_tax), str(tmp_path), results))
             for r in range(2)]
    for p in procs:
        p.start()
    got = {(case, rank): rest for case, rank, *rest in (results.get(timeout=180)
                                                        for _ in range(4))}
    for p in procs:
        p.join(timeout=60)
    for case in ("fail", "ok"):                             # one merge, on rank 0
        assert got[case, 0][0] == [0] and got[case, 1][0] == []
    # rank 0's merge failed: it raised, and rank 1 stopped quoting it instead of waiting
    assert got["fail", 0][3] == "customer file is broken"
    assert got["fail", 1][3].startswith("rank 0 failed, so rank 1 stops too: InputError: "
                                        "customer file is broken")
    assert not (tmp_path / "fail" / "super.json").exists()
    # it worked: rank 1 read rank 0's super.json (same 11 images); only rank 0 has the report
    (_, ids0, report0, _), (_, ids1, report1, _) = got["ok", 0], got["ok", 1]
    assert ids0 == ids1 == list(range(1, 12)) and report0 and not report1
    assert (tmp_path / "ok" / "super.json").exists()
