"""The minor cases of the hostile probe (issue 23, item 4): each one a clear ``error: …`` with
exit 1, a counted skip, or a refusal, never a traceback or a silent acceptance."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from taxdet.core.errors import ConfigError
from taxdet.detection.prediction.thresholds_file import read_thresholds
from tests.factories import make_checkpoint, make_tiny_taxonomies

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> tuple[Path, Path]:
    """(root, taxonomies folder) of a tiny demo world, 2 images per customer."""
    root = tmp_path_factory.mktemp("minor_world")
    return root, make_tiny_taxonomies(root, images_per_customer=2)


@pytest.fixture(scope="module")
def ckpt(world, tmp_path_factory) -> Path:
    """An untrained detector checkpoint of the world's taxonomies."""
    import taxdet.supertax as supertax
    path = tmp_path_factory.mktemp("minor_ckpt") / "model.pt"
    make_checkpoint(path, supertax.load([world[1]]))
    return path


def no_traceback(code: int, err: str, message: str) -> None:
    assert code == 1 and err.splitlines()[-1].startswith("error: ") and message in err, err
    assert "Traceback" not in err


# ---------------------------------------------------------------- merge_datasets.py
def customer_a_reading(world, tmp_path: Path, text: str) -> tuple[Path, Path]:
    """A copy of the world's taxonomies whose customer_a reads the annotation file ``text``:
    (taxonomies folder, that file)."""
    root, tax = world
    folder = tmp_path / "taxonomies"
    shutil.copytree(tax, folder)
    ann = tmp_path / "ann.json"
    ann.write_text(text)
    doc = yaml.safe_load((folder / "customer_a.yaml").read_text())
    doc["data"] = [{"annotations": str(ann), "images": str(root / "demo/customer_a/images")}]
    (folder / "customer_a.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder, ann


@pytest.mark.parametrize("case", ["no images", "images twice"])
def test_merge_refuses_a_file_without_images_or_with_images_twice(world, run_tool, snapshot,
                                                                  tmp_path, case):
    data = json.loads((world[0] / "demo/customer_a/annotations.json").read_text())
    if case == "no images":
        text = json.dumps({**data, "images": []})
        message = "'images' is empty but the file has 11 annotation(s)"
    else:  # the last "images" (the one a JSON reader keeps) is empty
        text = json.dumps(data).replace('"annotations": [', '"images": [], "annotations": [', 1)
        message = "the key 'images' appears twice in one JSON object"
    folder, ann = customer_a_reading(world, tmp_path, text)
    snap = snapshot(tmp_path, world[0])
    code, _, err = run_tool("merge_datasets", "--taxonomies", folder,
                            "--out", tmp_path / "out/super.json")
    no_traceback(code, err, message)
    assert err.startswith(f"error: {ann}: ")
    snap.unchanged()


# ---------------------------------------------------------------- --thresholds files
def thresholds_error(tmp_path: Path, text: str) -> str:
    path = tmp_path / "t.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as err:
        read_thresholds(path)
    assert str(err.value).startswith(f"{path}:"), err.value
    return str(err.value)


def test_a_deeply_nested_thresholds_file_is_an_error_not_a_recursion_error(tmp_path):
    assert "MAX_YAML_DEPTH" in thresholds_error(tmp_path, "thresholds: " + "[" * 5000 + "]" * 5000)


def test_thresholds_files_are_read_within_the_yaml_limits(tmp_path):
    big = "thresholds: {Car: 0.5}\nfit: '" + "x" * (5 << 20) + "'\n"
    assert "MAX_YAML_BYTES" in thresholds_error(tmp_path, big)
    bomb = "a: &a [1, 1, 1, 1, 1, 1, 1, 1, 1, 1]\n" + "".join(
        f"{c}: &{c} [*{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}, *{p}]\n"
        for p, c in zip("abcdefg", "bcdefgh")) + "thresholds: {Car: 0.5}\n"
    assert "MAX_YAML_NODES" in thresholds_error(tmp_path, bomb)
    dup = thresholds_error(tmp_path, "thresholds:\n  Car: 0.9\n  Car: 0.1\n")
    assert dup.endswith("t.yaml:3:3: the key 'Car' appears twice in one mapping"), dup


def test_a_small_alias_in_a_thresholds_file_is_read(tmp_path):
    (tmp_path / "t.yaml").write_text("thresholds: {Car: &x 0.5, Truck: *x}\n")
    assert read_thresholds(tmp_path / "t.yaml").thresholds == {"Car": 0.5, "Truck": 0.5}


def test_predict_with_a_deeply_nested_thresholds_file_exits_1(world, run_tool, snapshot,
                                                             tmp_path):
    (tmp_path / "t.yaml").write_text("thresholds: " + "{a: " * 3000 + "1" + "}" * 3000)
    (tmp_path / "model.pt").write_bytes(b"not read: the thresholds are read first")
    images = world[0] / "demo/customer_a/images"
    snap = snapshot(tmp_path, world[0])
    code, _, err = run_tool("predict", "--checkpoint", tmp_path / "model.pt", "--images", images,
                            "--thresholds", tmp_path / "t.yaml", "--out", tmp_path / "p.json")
    no_traceback(code, err, f"error: {tmp_path / 't.yaml'}:")
    snap.unchanged()


# ---------------------------------------------------------------- training settings
@pytest.mark.parametrize("flag, message", [
    ("--lr=nan", "argument --optim.lr/--lr: expected a finite number, got nan"),
    ("--lr=inf", "argument --optim.lr/--lr: expected a finite number, got inf"),
    ("--optim.weight_decay=nan", "argument --optim.weight_decay: expected a finite number"),
    ("--optim.clip_grad=-inf", "argument --optim.clip_grad: expected a finite number, got -inf"),
])
def test_train_refuses_non_finite_flags_as_usage_errors(world, run_tool, tmp_path, flag, message):
    """A flag that is no number at all (``--lr abc``) is a usage error (exit 2); so is NaN."""
    code, _, err = run_tool("train", "--taxonomies", world[1], "--output", tmp_path / "run",
                            "--steps", "1", flag)
    assert code == 2 and message in err and "Traceback" not in err, err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("text", ["optim: {lr: .nan}", "optim: {weight_decay: .inf}",
                                  "optim:\n  lr: 1e400"])
def test_train_refuses_non_finite_settings_in_a_config_file(world, run_tool, tmp_path, text):
    (tmp_path / "c.yaml").write_text(text)
    code, _, err = run_tool("train", "--config", tmp_path / "c.yaml", "--taxonomies", world[1],
                            "--output", tmp_path / "run", "--steps", "1")
    no_traceback(code, err, "expected a finite number")
    assert not (tmp_path / "run").exists()


def test_a_config_built_in_python_refuses_non_finite_numbers():
    from taxdet.detection.engine.config_sections import OptimConfig
    for values in ({"lr": float("nan")}, {"weight_decay": float("inf")}):
        with pytest.raises(ConfigError, match="must be a finite number"):
            OptimConfig(**values)


# ---------------------------------------------------------------- --device
@pytest.fixture
def no_cuda(monkeypatch):
    import torch
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)


@pytest.mark.parametrize("device, message", [
    ("cuda", "device 'cuda': CUDA is not available on this machine"),
    ("cuda:1", "device 'cuda:1': CUDA is not available on this machine"),
    ("gpu", "device 'gpu': not a device name")])
def test_train_on_a_device_the_machine_lacks_is_one_clear_error(world, run_tool, tmp_path, no_cuda,
                                                               device, message):
    code, _, err = run_tool("train", "--taxonomies", world[1], "--output", tmp_path / "run",
                            "--steps", "1", "--device", device)
    no_traceback(code, err, message)
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_predict_on_cuda_without_cuda_is_one_clear_error(world, ckpt, run_tool, tmp_path, no_cuda):
    code, _, err = run_tool("predict", "--checkpoint", ckpt, "--images",
                            world[0] / "demo/customer_a/images", "--out", tmp_path / "p.json",
                            "--device", "cuda")
    no_traceback(code, err, "device 'cuda': CUDA is not available on this machine")
    assert not (tmp_path / "p.json").exists()


# ---------------------------------------------------------------- resuming and saving checkpoints
def train_flags(tax: Path, out: Path, *extra) -> list:
    return ["--taxonomies", tax, "--output", out, "--image-size", "128", "--batch-size", "2",
            "--workers", "0", "--device", "cpu", "--optim.warmup_steps", "1",
            "--run.progress", "false", "--run.tensorboard", "false", *extra]


@pytest.fixture(scope="module")
def one_step_run(world, tmp_path_factory) -> Path:
    """A run folder trained for 1 step (its last.pt can be resumed)."""
    from taxdet.tools.train import main as train_main
    out = tmp_path_factory.mktemp("minor_run") / "run"
    assert train_main([str(a) for a in train_flags(world[1], out, "--steps", "1")]) == 0
    return out


@pytest.fixture
def run_copy(one_step_run, tmp_path) -> Path:
    out = tmp_path / "run"
    shutil.copytree(one_step_run, out)
    return out


@pytest.mark.parametrize("key, value, message", [
    ("epoch", "x", "state.epoch must be a count (an integer >= 0), got 'x'"),
    ("step", -3, "state.step must be a count (an integer >= 0), got -3"),
    ("best_metric", "high", "state.best_metric must be a number, got 'high'"),
    ("history", 5, "state.history must be a list, got 5")])
def test_resuming_a_checkpoint_with_a_mistyped_state_is_refused(world, run_copy, run_tool,
                                                                 snapshot, key, value, message):
    from taxdet.detection.engine import checkpoint
    ckpt = checkpoint.load(run_copy / "last.pt")
    ckpt["state"][key] = value
    checkpoint.save_atomic({k: v for k, v in ckpt.items() if not k.startswith("checkpoint_")
                            and k != "hmac_sha256"}, run_copy / "last.pt")
    snap = snapshot(run_copy)
    code, _, err = run_tool("train", *train_flags(world[1], run_copy, "--steps", "2",
                                                  "--resume", run_copy / "last.pt"))
    no_traceback(code, err, f"{run_copy / 'last.pt'}: cannot resume from it")
    assert message in err
    snap.unchanged()


def test_resume_together_with_init_checkpoint_is_refused(world, run_copy, ckpt, run_tool,
                                                         snapshot):
    snap = snapshot(run_copy)
    code, _, err = run_tool("train", *train_flags(world[1], run_copy, "--steps", "2",
                                                  "--resume", run_copy / "last.pt",
                                                  "--init-checkpoint", ckpt))
    no_traceback(code, err, f"--resume {run_copy / 'last.pt'} continues a run with its own "
                 f"weights, so --init-checkpoint {ckpt} would not be used")
    snap.unchanged()


class FullDisk:
    """A file whose writes fail with ENOSPC after ``room`` bytes (``os.fdopen``'s result)."""

    def __init__(self, f, room: int):
        self.f, self.room = f, room

    def write(self, data) -> int:
        self.room -= len(data)
        if self.room < 0:
            raise OSError(28, "No space left on device")
        return self.f.write(data)

    def __getattr__(self, name):
        return getattr(self.f, name)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.f.close()


def test_a_checkpoint_save_on_a_full_disk_is_an_error_and_keeps_the_old_file(
        world, run_copy, run_tool, monkeypatch):
    import os

    from taxdet.core import files
    before = (run_copy / "last.pt").read_bytes()
    real_fdopen = os.fdopen
    monkeypatch.setattr(files.os, "fdopen", lambda fd, mode: FullDisk(real_fdopen(fd, mode),
                                                                      room=1 << 16))
    code, _, err = run_tool("train", *train_flags(world[1], run_copy, "--steps", "2",
                                                  "--resume", run_copy / "last.pt"))
    no_traceback(code, err, "cannot write checkpoint ")
    assert "No space left on device" in err
    assert (run_copy / "last.pt").read_bytes() == before
    assert not list(run_copy.glob(".*.tmp"))


# ---------------------------------------------------------------- messages
def test_a_classifier_checkpoint_given_to_a_detector_tool_says_so(world, ckpt, run_tool,
                                                                  tmp_path):
    from taxdet.detection.engine import checkpoint
    content = checkpoint.load(ckpt)
    content = {k: v for k, v in content.items() if not k.startswith("checkpoint_")
               and k != "hmac_sha256"}
    checkpoint.save_atomic({**content, "task": "classification"}, tmp_path / "cls.pt")
    code, _, err = run_tool("predict", "--checkpoint", tmp_path / "cls.pt", "--images",
                            world[0] / "demo/customer_a/images", "--out", tmp_path / "p.json")
    no_traceback(code, err, f"{tmp_path / 'cls.pt'}: a classifier checkpoint, not a detector one")
    assert "unknown key" not in err and not (tmp_path / "p.json").exists()


def test_a_detector_checkpoint_given_to_a_classifier_tool_says_so(ckpt, run_tool, tmp_path):
    code, _, err = run_tool("evaluate_classifier", "--checkpoint", ckpt)
    no_traceback(code, err, f"{ckpt}: a detector checkpoint, not a classifier one")


# ---------------------------------------------------------------- --markdown tables
def test_names_with_bars_and_newlines_cannot_break_the_markdown_table(run_tool, tmp_path):
    name = "car|truck\n# injected heading"
    gt = {"images": [{"id": 1, "width": 64, "height": 48, "file_name": "1.png"}],
          "annotations": [{"id": 1, "image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20],
                           "area": 200, "iscrowd": 0}],
          "categories": [{"id": 1, "name": name}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "p.json").write_text(json.dumps(
        [{"image_id": 1, "category_id": 1, "bbox": [1, 2, 10, 20], "score": 0.9}]))
    code, _, err = run_tool("evaluate", "--gt", tmp_path / "gt.json", "--predictions",
                            tmp_path / "p.json", "--markdown", tmp_path / "r.md")
    assert code == 0, err
    text = (tmp_path / "r.md").read_text()
    assert "| car\\|truck\\n# injected heading |" in text
    assert not any(line.startswith("# injected") for line in text.splitlines())
    rows = [line for line in text.splitlines() if line.startswith("| car")]
    assert len(rows) == 1 and rows[0].replace("\\|", "").count("|") == 9


# ---------------------------------------------------------------- NUL characters
@pytest.mark.parametrize("section, key", [("images", "file_name"), ("categories", "name")])
def test_nul_in_a_coco_name_is_refused_and_shown_escaped(world, run_tool, snapshot, tmp_path,
                                                         section, key):
    data = json.loads((world[0] / "demo/customer_a/annotations.json").read_text())
    data[section][0][key] = "a\0b.png"
    folder, ann = customer_a_reading(world, tmp_path, json.dumps(data))
    snap = snapshot(tmp_path, world[0])
    code, _, err = run_tool("merge_datasets", "--taxonomies", folder,
                            "--out", tmp_path / "out/super.json")
    no_traceback(code, err, f"{key} must not contain a NUL character, got 'a\\x00b.png'")
    assert err.startswith(f"error: {ann}: ") and "\0" not in err
    snap.unchanged()


def test_evaluate_refuses_nul_in_a_ground_truth_category_name(run_tool, tmp_path):
    gt = {"images": [{"id": 1, "width": 64, "height": 48, "file_name": "1.png"}],
          "annotations": [], "categories": [{"id": 1, "name": "car\0"}]}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "p.json").write_text("[]")
    code, _, err = run_tool("evaluate", "--gt", tmp_path / "gt.json", "--predictions",
                            tmp_path / "p.json")
    no_traceback(code, err, "must not contain a NUL character, got 'car\\x00'")
    assert "\0" not in err


# ---------------------------------------------------------------- unreadable images
def truncated_copy(src: Path, dst: Path) -> Path:
    """``dst``: the first half of the JPEG ``src`` (OpenCV decodes it half grey, PIL refuses)."""
    data = src.read_bytes()
    dst.parent.mkdir(parents=True, exist_ok=True)
    dst.write_bytes(data[:len(data) // 2])
    return dst


def test_training_on_a_super_json_with_a_truncated_image_is_refused(world, run_tool, tmp_path):
    """As the merge refuses it: every image of a prepared super.json is decoded once."""
    import taxdet.supertax as supertax
    from taxdet.datasets import MergeConfig, merge
    data = tmp_path / "super.json"
    merge(supertax.load([world[1]]), MergeConfig())[0].write(data)
    doc = json.loads(data.read_text())
    first = doc["images"][0]
    bad = truncated_copy(tmp_path / first["file_name"], tmp_path / "truncated.jpg")
    first["file_name"] = bad.name
    data.write_text(json.dumps(doc))
    code, _, err = run_tool("train", *train_flags(world[1], tmp_path / "run", "--data", data,
                                                  "--steps", "1"))
    assert code == 1 and err.startswith("error: 1 of ") and "Traceback" not in err, err
    assert f"\n  {bad}: cannot decode: image file is truncated" in err
    assert f"[{data}, image id {first['id']}]" in err
    assert not (tmp_path / "run").exists() or not any((tmp_path / "run").iterdir())


def test_evaluate_checkpoint_skips_and_counts_a_truncated_ground_truth_image(world, ckpt,
                                                                            run_tool, tmp_path):
    shutil.copytree(world[0] / "demo/test", tmp_path / "test")
    gt = json.loads((tmp_path / "test/annotations.json").read_text())
    first, n = gt["images"][0], len(gt["images"])
    bad = tmp_path / "test/images" / first["file_name"]
    truncated_copy(world[0] / "demo/test/images" / first["file_name"], bad)
    code, out, err = run_tool("evaluate", "--gt", tmp_path / "test/annotations.json",
                              "--checkpoint", ckpt, "--images", tmp_path / "test/images",
                              "--device", "cpu", "--workers", "0", "--json", tmp_path / "r.json",
                              "--markdown", tmp_path / "r.md",
                              "--save-predictions", tmp_path / "p.json")
    assert code == 0 and "Traceback" not in err, err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert warnings == [f"warning: 1 of {n} images skipped (unreadable):"], err
    assert f"\n  {bad}: cannot decode (image file is truncated" in err
    skipped = json.loads((tmp_path / "r.json").read_text())["info"]["images_skipped"]
    assert skipped["images"] == 1 and skipped["of"] == n
    assert skipped["first"].startswith(f"{bad}: cannot decode")
    assert "left out of the scored ground truth" in skipped["note"]
    assert "1 of 2 images skipped" in (tmp_path / "r.md").read_text()
    predicted = {p["image_id"] for p in json.loads((tmp_path / "p.json").read_text())}
    assert first["id"] not in predicted and predicted <= {im["id"] for im in gt["images"]}
    # the scores are those of the ground truth without the image
    kept = {**gt, "images": gt["images"][1:],
            "annotations": [a for a in gt["annotations"] if a["image_id"] != first["id"]]}
    (tmp_path / "kept.json").write_text(json.dumps(kept))
    assert run_tool("evaluate", "--gt", tmp_path / "kept.json", "--predictions",
                    tmp_path / "p.json", "--taxonomies", world[1],
                    "--json", tmp_path / "k.json")[0] == 0
    scored, without = (json.loads((tmp_path / n).read_text()) for n in ("r.json", "k.json"))
    scored.pop("info"), without.pop("info")   # how the detections were made: differs
    assert scored == without


def bomb_png(path: Path, side: int = 20_000) -> Path:
    """A valid all-black 1-bit PNG of ``side`` x ``side`` pixels (400 M: over PIL's limit) in
    about 50 KB: a decompression bomb."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    packer, row = zlib.compressobj(9), b"\0" * (1 + (side + 7) // 8)   # filter byte + bits
    pixels = b"".join(packer.compress(row) for _ in range(side)) + packer.flush()
    header = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)      # 1-bit grey
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels)
                     + chunk(b"IEND", b""))
    return path


@pytest.fixture(scope="module")
def classifier(tmp_path_factory) -> tuple[Path, Path]:
    """(taxonomies of a tiny classification world, a classifier checkpoint of 1 step on it)."""
    from taxdet.tools.train_classifier import main as train_classifier
    from tests.factories import make_tiny_classification
    root = tmp_path_factory.mktemp("minor_cls")
    tax = make_tiny_classification(root)
    assert train_classifier([
        "--taxonomies", str(tax), "--output", str(root / "run"), "--model",
        "mobilenetv3_small_050", "--image-size", "32", "--batch-size", "4", "--steps", "1",
        "--optim.warmup_steps", "1", "--run.progress", "false", "--device", "cpu",
        "--split.val_fraction", "0.3", "-q"]) == 0
    return tax, root / "run/last.pt"


def test_one_bomb_image_in_ood_is_skipped_and_counted(classifier, run_tool, tmp_path):
    tax, ckpt = classifier
    dogs = tax.parent / "crops/customer_a/Dog"
    shutil.copytree(dogs, tmp_path / "ood")
    bomb = bomb_png(tmp_path / "ood/bomb.png")
    counts = {}
    for name, folder in (("plain", dogs), ("bomb", tmp_path / "ood")):
        code, _, err = run_tool("evaluate_classifier", "--checkpoint", ckpt, "--data", tax,
                                "--ood", folder, "--json", tmp_path / f"{name}.json")
        assert code == 0 and "Traceback" not in err, err
        counts[name] = json.loads((tmp_path / f"{name}.json").read_text())["counts"]
    assert counts["bomb"]["ood_images"] == counts["plain"]["ood_images"]
    n = len(list(dogs.iterdir())) + 1
    assert f"warning: 1 of {n} images skipped (unreadable):\n  {bomb}: image too large to " \
           "decode" in err
