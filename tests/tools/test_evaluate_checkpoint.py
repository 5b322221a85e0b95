"""tools/evaluate.py --checkpoint: predict a ground truth's images, then evaluate."""

from __future__ import annotations

import json
import runpy
import shutil
from types import SimpleNamespace

import pytest
from PIL import Image

import taxdet.supertax as supertax
from tests.detection.evaluation.eval_cases import STAT_KEYS
from tests.factories import make_checkpoint, make_demo
from tests.paths import DRIVING, REPO

TOOL = REPO / "tools" / "evaluate.py"

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tool():
    return SimpleNamespace(**runpy.run_path(str(TOOL), run_name="evaluate_tool"))


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    taxset = supertax.load([DRIVING])
    root = tmp_path_factory.mktemp("eval_ckpt")
    make_checkpoint(root / "last.pt", taxset)
    return SimpleNamespace(root=root, ckpt=root / "last.pt", demo=make_demo(root / "demo", taxset))


def _base(s, *extra) -> list[str]:
    return ["--gt", str(s.demo / "test/annotations.json"), "--checkpoint", str(s.ckpt),
            "--images", str(s.demo / "test/images"), "--device", "cpu", "--workers", "0", *extra]


def test_end_to_end_writes_json_predictions_and_drawing(tool, setup, capsys):
    out = setup.root / "out"
    code = tool.main(_base(setup, "--json", str(out / "r.json"), "--markdown", str(out / "r.md"),
                           "--save-predictions", str(out / "preds.json"),
                           "--draw", str(out / "draw"),
                           "--draw-count", "3", "--draw-score", "0"))
    assert code == 0
    printed = capsys.readouterr().out
    assert "COCO bbox" in printed and "pedestrian_adult" in printed
    assert f"wrote {out / 'draw' / 'predictions.png'}" in printed
    result = json.loads((out / "r.json").read_text())
    assert set(STAT_KEYS) <= set(result) and result["mode"] == "plain"
    preds = json.loads((out / "preds.json").read_text())
    assert {p["image_id"] for p in preds} == {1, 2, 3, 4}          # the GT's image ids
    assert {p["category_id"] for p in preds} <= set(range(1, 8))  # columns 0..6 + 1
    png = Image.open(out / "draw" / "predictions.png")
    assert png.width >= 3 * 384 and png.height == 384 + 4 + 28     # 3 tiles of 128 px x 3
    assert (out / "r.md").read_text().strip()


def test_saved_predictions_evaluate_to_the_same_numbers(tool, setup):
    """--checkpoint equals --predictions on the file it saved (one path to the evaluator)."""
    out = setup.root / "same"
    assert tool.main(_base(setup, "--json", str(out / "a.json"),
                           "--save-predictions", str(out / "p.json"))) == 0
    assert tool.main(["--gt", str(setup.demo / "test/annotations.json"), "--predictions",
                      str(out / "p.json"), "--taxonomies", str(DRIVING),
                      "--json", str(out / "b.json")]) == 0
    a, b = (json.loads((out / n).read_text()) for n in ("a.json", "b.json"))
    info = a.pop("info"), b.pop("info")  # how the detections were made: differs
    assert a == b
    assert info[0]["decoding"] == "coverage" and info[1]["detections"].startswith("predictions")


def test_customer_ground_truth_is_scored_in_the_customers_names(tool, setup, capsys):
    code = tool.main(["--gt", str(setup.demo / "customer_b/annotations.json"), "--checkpoint",
                      str(setup.ckpt), "--images", str(setup.demo / "customer_b/images"),
                      "--device", "cpu", "--workers", "0"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "customer" in printed and "Pedestrian_adult" in printed


def test_missing_images_are_listed_at_once_and_exit_1(tool, setup, capsys, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(setup.demo / "test/images", images)
    (images / "000002.png").unlink()
    (images / "000004.png").unlink()
    code = tool.main(_base(setup)[:4] + ["--images", str(images), "--device", "cpu"])
    assert code == 1
    err = capsys.readouterr().err
    assert "2 of 4 image files not found" in err
    assert f"image id 2: {images / '000002.png'}" in err
    assert f"image id 4: {images / '000004.png'}" in err


def test_images_default_to_the_ground_truth_folder(tool, setup, capsys):
    code = tool.main(["--gt", str(setup.demo / "test/annotations.json"), "--checkpoint",
                      str(setup.ckpt), "--device", "cpu", "--workers", "0"])
    assert code == 1  # the demo keeps its images one folder down, in test/images
    assert f"relative to {setup.demo / 'test'}" in capsys.readouterr().err


def test_taxonomy_hash_mismatch_is_refused_with_exit_1(tool, setup, capsys, tmp_path):
    changed = tmp_path / "driving"
    shutil.copytree(DRIVING, changed)
    (changed / "customer_a.yaml").write_text(
        (changed / "customer_a.yaml").read_text().replace("maps_to: person",
                                                          "maps_to: pedestrian_adult"))
    code = tool.main(_base(setup, "--taxonomies", str(changed)))
    assert code == 1
    err = capsys.readouterr().err
    assert "trained for taxonomy hash" in err and "customer_a" in err


def test_unreadable_checkpoint_is_exit_1(tool, setup, capsys, tmp_path):
    (tmp_path / "broken.pt").write_bytes(b"not a checkpoint")
    code = tool.main(["--gt", str(setup.demo / "test/annotations.json"),
                      "--checkpoint", str(tmp_path / "broken.pt")])
    assert code == 1 and "not a readable checkpoint" in capsys.readouterr().err


def test_checkpoint_only_options_need_checkpoint(tool, setup):
    with pytest.raises(SystemExit) as exc:
        tool.parse_args(["--gt", "g.json", "--predictions", "p.json", "--save-predictions", "d"])
    assert exc.value.code == 2


def test_split_val_predicts_only_the_runs_validation_images(tool, setup, capsys):
    """The demo's test file has no content hashes: its images are matched by id."""
    run = setup.root / "run_split"
    run.mkdir()
    entries = [{"id": i, "file_name": f"{i:06d}.png", "content_hash": ""} for i in (1, 2, 3, 4)]
    (run / "split.json").write_text(json.dumps({"format": 1, "val_fraction": 0.5, "salt": "s",
                                                "by": "filename", "train": entries[:2],
                                                "val": entries[2:]}))
    out = setup.root / "split_out"
    code = tool.main(_base(setup, "--run", str(run), "--split", "val",
                           "--save-predictions", str(out / "p.json"), "--json",
                           str(out / "r.json")))
    assert code == 0
    assert "2 of 2 images found" in capsys.readouterr().out
    assert {p["image_id"] for p in json.loads((out / "p.json").read_text())} <= {3, 4}
    assert json.loads((out / "r.json").read_text())["counts"]["images"] == 2
