"""tools/train.py: exit codes, a real single-process run, and a 2-process gloo run via torchrun.

The tiny data: 4 demo images per customer at 128 px (11 images; 7 train, 4 val),
EfficientDet-D0 at 128 px, batch 2.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from taxdet.detection.engine import checkpoint
from taxdet.detection.engine.distributed import DistInfo
from taxdet.detection.training.cli_options import add_arguments, resolve
from taxdet.detection.training.train_data import build_data
from taxdet.tools.train import main
from tests.factories import make_tiny_taxonomies, read_metrics
from tests.paths import REPO

TRAIN = REPO / "tools" / "train.py"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_tax(tmp_path_factory) -> Path:
    return make_tiny_taxonomies(tmp_path_factory.mktemp("cli"))


def tiny_flags(tax: Path, out: Path, *extra: str) -> list[str]:
    return ["--taxonomies", str(tax), "--output", str(out), "--image-size", "128",
            "--batch-size", "2", "--workers", "0", "--device", "cpu", "--optim.warmup_steps", "1",
            "--run.log_every", "1", "--run.progress", "false", *extra]


def test_bad_taxonomy_path_exits_1_naming_it(tmp_path, capsys):
    missing = tmp_path / "no_such_taxonomies"
    assert main(["--taxonomies", str(missing), "--output", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error: ") and str(missing) in err
    assert not (tmp_path / "run").exists()


def test_unknown_yaml_key_exits_1_naming_key_and_file(tmp_path, capsys):
    config = tmp_path / "exp.yaml"
    config.write_text("optim:\n  lr: 0.01\n  learning_rate: 0.1\n")
    assert main(["--config", str(config), "--output", str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert f"{config}.optim: unknown key(s) ['learning_rate']" in err


@pytest.mark.parametrize("argv, message", [
    (["--no-such-option"], "unrecognized arguments: --no-such-option"),
    (["--lr", "fast"], "argument --optim.lr/--lr: expected float, got 'fast'"),
    (["--steps", "2.5"], "argument --optim.steps/--steps: expected int, got 2.5"),
    (["--split.by", "random"], "expected one of 'content', 'filename', got 'random'"),
    (["--epochs"], "expected one argument"),
])
def test_usage_errors_exit_2_with_argparse_message(argv, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2
    assert message in capsys.readouterr().err


def test_single_process_run_trains_and_prints_the_summary(tiny_tax, tmp_path, capsys):
    # anchor labeling on the device for the whole batch (not in the loader): the other path
    code = main(tiny_flags(tiny_tax, tmp_path, "--steps", "2", "--data.label_in_workers", "false"))
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("trained 2 steps (0 full epochs) of efficientdet_d0 at 128px on 7 images")
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["steps"] == 2 and summary["output"] == str(tmp_path)
    assert {"config.yaml", "taxonomy_hash.txt", "metrics.jsonl", "last.pt", "best.pt"} <= {
        p.name for p in tmp_path.iterdir()}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def resolve_flags(flags: list[str]):
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return resolve(parser.parse_args(flags))


def expected_shares(flags: list[str], epoch: int, images: int) -> list[tuple[int, str]]:
    """(images, digest) each rank should log for ``epoch``: its share of the sampler's draws."""
    import hashlib

    import taxdet.supertax as supertax
    cfg = resolve_flags(flags)
    taxset = supertax.load(cfg.data.taxonomies)
    shares = []
    for rank in range(2):
        data = build_data(cfg, taxset, DistInfo(rank, 2))
        data.sampler.set_epoch(epoch)
        ids = [data.train.samples[i].image_id for i in list(data.sampler)[:images]]
        shares.append((len(ids), hashlib.sha1(json.dumps(ids).encode()).hexdigest()[:16]))
    return shares


@pytest.mark.slow
def test_two_process_gloo_run_splits_data_and_only_rank_0_writes(tiny_tax, tmp_path):
    out = tmp_path / "ddp"
    # 7 train images over 2 ranks: ceil(7 / 2) = 4 draws per rank -> 4 // 2 = 2 steps per epoch;
    # 3 steps = epoch 0 (2 steps) + 1 step of epoch 1; validation at step 2 and at the end
    flags = tiny_flags(tiny_tax, out, "--steps", "3", "--val-every", "2")
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONWARNINGS="ignore::FutureWarning")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2",
           "--master_addr", "127.0.0.1", "--master_port", str(free_port()), str(TRAIN), *flags]
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("trained 3 steps") == 1                 # only rank 0 prints
    names = {p.name for p in out.iterdir()}
    assert names == {"best.pt", "last.pt", "config.yaml", "merge_report.json", "metrics.jsonl",
                     "taxonomies.json", "taxonomy_hash.txt", "split.json", "coverage.json",
                     "super.json", "curves.png", "tensorboard"}
    # no temp files left; super.json: rank 0's merge, read by 1; curves and events by rank 0
    records = read_metrics(out)
    assert [r["step"] for r in records if "loss" in r] == [1, 2, 3]  # written once, by rank 0
    assert [r["step"] for r in records if "val" in r] == [2, 3]
    shares = [r for r in records if "rank_images" in r]
    assert [(r["epoch"], r["rank_images"]) for r in shares] == [(0, [4, 4]), (1, [2, 2])]
    for r in shares:  # each rank trained its own positions of the epoch's draws
        expected = expected_shares(flags, r["epoch"], r["rank_images"][0])
        assert list(zip(r["rank_images"], r["rank_ids_sha1"])) == expected
    assert shares[0]["rank_ids_sha1"][0] != shares[0]["rank_ids_sha1"][1]
    # coverage.json and the checkpoint hold the sum of both ranks' counts, not rank 0's alone
    coverage = json.loads((out / "coverage.json").read_text())["total"]
    counts = checkpoint.load(out / "last.pt")["coverage"]            # [T, kinds, K]
    assert sum(c["positive"] for c in coverage.values()) == int(counts[:, 0].sum()) > 0
    # validation gathered both ranks' predictions: rank 0's EMA model and decoding plan (saved
    # in last.pt at the final validation) predicting each rank's half of the val images gives
    # the same metrics
    final = [r for r in records if "val" in r][-1]["val"]
    assert final == evaluate_like_two_ranks(flags, out / "last.pt")
    assert sum(c["predictions"] for c in final["per_class"].values()) > 0


def evaluate_like_two_ranks(flags: list[str], ckpt_path: Path) -> dict:
    """The validation record of ``ckpt_path`` recomputed: its EMA model, decoded as prediction
    decodes it (``coverage`` under the checkpoint's own ``decoding_plan``), over each rank's
    half of the val images, plus the decoding and dropped-box keys validation adds."""
    import taxdet.supertax as supertax
    from taxdet.detection.evaluation import evaluate, load_ground_truth
    from taxdet.detection.prediction.predictor import load_predictor, predict
    cfg = resolve_flags(flags)
    taxset = supertax.load(cfg.data.taxonomies)
    predictor, _, _ = load_predictor(ckpt_path, taxset=taxset)
    data = build_data(cfg, taxset, DistInfo())
    # one thread (the one_thread fixture), as each rank ran: the same float sums
    results = [r for rank in range(2)
               for r in predict(predictor, data.val_loader(rank, 2), torch.device("cpu"))]
    metrics = evaluate(load_ground_truth(data.val_gt, taxset=taxset), results, taxset=taxset)
    return {**metrics.to_dict(), "decoding": predictor.decoding, **predictor.dropped.info()}
