"""tools/predict.py: pre-labels in a customer's own ids, scored by evaluate.py as they are;
per-class thresholds; unreadable images; outputs that would overwrite inputs."""

from __future__ import annotations

import argparse
import json
import shutil
from types import SimpleNamespace

import pytest
from pycocotools.coco import COCO

import taxdet.supertax as supertax
from tests.factories import make_checkpoint, make_demo
from tests.paths import DRIVING

pytestmark = pytest.mark.usefixtures("one_thread")

RUN = ("--device", "cpu", "--workers", "0")


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    taxset = supertax.load([DRIVING])
    root = tmp_path_factory.mktemp("predict")
    make_checkpoint(root / "last.pt", taxset)
    demo = make_demo(root / "demo", taxset)
    # customer B's file with its own, non-sequential ids: categories and images
    b = json.loads((demo / "customer_b/annotations.json").read_text())
    cat_ids = {c["id"]: 10 * c["id"] for c in b["categories"]}
    for c in b["categories"]:
        c["id"] = cat_ids[c["id"]]
    for img in b["images"]:
        img["id"] += 100
    for a in b["annotations"]:
        a["category_id"], a["image_id"] = cat_ids[a["category_id"]], a["image_id"] + 100
    (demo / "customer_b/own_ids.json").write_text(json.dumps(b))
    return SimpleNamespace(root=root, ckpt=root / "last.pt", demo=demo,
                           b_images=demo / "customer_b/images",
                           b_gt=demo / "customer_b/own_ids.json")


@pytest.fixture(scope="module")
def b_coco(setup, tmp_path_factory):
    """predict.py --customer customer_b --format coco on B's images (every detection kept)."""
    from tests.conftest import _tool
    out = tmp_path_factory.mktemp("b") / "b.json"
    code = _tool("predict").main(["--checkpoint", str(setup.ckpt), "--images", str(setup.b_images),
                                  "--customer", "customer_b", "--categories", str(setup.b_gt),
                                  "--format", "coco", "--score-threshold", "0", "--out", str(out),
                                  *RUN])
    assert code == 0
    return out


def test_customer_coco_file_loads_in_pycocotools_with_the_customers_ids(b_coco, setup):
    coco = COCO(str(b_coco))
    assert {c["id"]: c["name"] for c in coco.dataset["categories"]} == {
        10: "Pedestrian_adult", 20: "Pedestrian_child", 30: "Car", 40: "Truck"}
    assert [i["file_name"] for i in coco.dataset["images"]] == [
        "000001.png", "000002.png", "000003.png", "000004.png"]
    anns = coco.dataset["annotations"]
    assert anns and {a["category_id"] for a in anns} <= {10, 20, 30, 40}
    assert all(0 < a["score"] <= 1 and a["area"] > 0 for a in anns)
    assert all(a["bbox"][0] + a["bbox"][2] <= 128.01 for a in anns)  # original pixels
    assert coco.dataset["info"]["taxonomy"] == "customer_b"
    assert coco.dataset["info"]["not_predicted"] == []


def test_evaluate_scores_the_coco_file_against_the_customers_own_file(b_coco, setup, run_tool):
    """No remapping: the file's own ids, images by file_name (B's ids start at 101); equal
    to evaluating the checkpoint in the customer view (the file names its checkpoint, whose
    taxonomies give that view)."""
    out = setup.root / "scored"
    code, printed, err = run_tool("evaluate", "--gt", setup.b_gt, "--predictions", b_coco,
                                  "--json", out / "plain.json")
    assert code == 0, err
    assert "customer (customer_b)" in printed and "Pedestrian_child" in printed
    code, _, err = run_tool("evaluate", "--gt", setup.b_gt, "--checkpoint", setup.ckpt,
                            "--images", setup.b_images, *RUN, "--json", out / "ckpt.json",
                            "--save-predictions", out / "saved.json")
    assert code == 0, err
    plain, ckpt = (json.loads((out / n).read_text()) for n in ("plain.json", "ckpt.json"))
    assert ckpt["mode"] == "customer"
    assert plain["AP"] == pytest.approx(ckpt["AP"]) and plain["AR100"] == pytest.approx(
        ckpt["AR100"])
    assert {n: c["AP"] for n, c in plain["per_class"].items()} == pytest.approx(
        {n: c["AP"] for n, c in ckpt["per_class"].items()})
    # the same file in the customer view (--taxonomies): names -> columns -> B's labels
    code, _, err = run_tool("evaluate", "--gt", setup.b_gt, "--predictions", b_coco,
                            "--taxonomies", DRIVING, "--json", out / "view.json")
    assert code == 0, err
    view = json.loads((out / "view.json").read_text())
    assert view["mode"] == "customer" and view["AP"] == pytest.approx(ckpt["AP"])
    # --save-predictions in the customer view: B's own category and image ids
    saved = json.loads((out / "saved.json").read_text())
    assert {p["category_id"] for p in saved} <= {10, 20, 30, 40}
    assert {p["image_id"] for p in saved} <= {101, 102, 103, 104}


def test_evaluate_draws_a_predictions_file_and_fits_thresholds(b_coco, setup, run_tool):
    out = setup.root / "drawn"
    code, printed, err = run_tool("evaluate", "--gt", setup.b_gt, "--predictions", b_coco,
                                  "--images", setup.b_images, "--draw", out, "--draw-score", "0",
                                  "--fit-thresholds", out / "t.yaml")
    assert code == 0, err
    assert (out / "predictions.png").read_bytes()[:4] == b"\x89PNG"
    assert f"wrote {out / 't.yaml'}" in printed
    code, printed, err = run_tool(
        "predict", "--checkpoint", setup.ckpt, "--images", setup.b_images, "--customer",
        "customer_b", "--categories", setup.b_gt, "--thresholds", out / "t.yaml",
        "--score-threshold", "0", "--format", "results", "--out", out / "r.json", *RUN)
    assert code == 0, err
    from taxdet.detection.prediction.thresholds_file import read_thresholds
    cut = read_thresholds(out / "t.yaml").thresholds
    ids = {"Pedestrian_adult": 10, "Pedestrian_child": 20, "Car": 30, "Truck": 40}  # B's own
    for r in json.loads((out / "r.json").read_text()):
        name = next(n for n, i in ids.items() if i == r["category_id"])
        assert cut.get(name, 0) is not None and r["score"] >= cut.get(name, 0)


def test_super_taxonomy_results_and_not_predicted_labels(setup, run_tool, tmp_path):
    code, printed, err = run_tool("predict", "--checkpoint", setup.ckpt, "--image-list",
                                  _list(tmp_path, setup), "--format", "results",
                                  "--score-threshold", "0", "--out", tmp_path / "r.json", *RUN)
    assert code == 0, err
    results = json.loads((tmp_path / "r.json").read_text())
    assert results and {r["category_id"] for r in results} <= set(range(1, 8))
    assert "'driving'" in printed
    code, printed, err = run_tool("predict", "--checkpoint", setup.ckpt, "--customer",
                                  "customer_a", "--categories",
                                  setup.demo / "customer_a/annotations.json",
                                  str(setup.demo / "customer_a/images/*.png"),
                                  "--out", tmp_path / "a.json", "--draw", tmp_path / "d", *RUN)
    assert code == 0, err
    assert "not predicted (maps_to: null): Dog" in printed
    assert json.loads((tmp_path / "a.json").read_text())["info"]["not_predicted"] == ["Dog"]
    assert len(list((tmp_path / "d").rglob("*.png"))) == 4


def _list(tmp_path, setup):
    (tmp_path / "list.txt").write_text("\n".join(str(p) for p in
                                                 sorted(setup.b_images.glob("*.png"))[:2]))
    return tmp_path / "list.txt"


def test_unreadable_images_are_skipped_with_a_counted_warning(setup, run_tool, tmp_path):
    images = tmp_path / "images"
    shutil.copytree(setup.b_images, images)
    (images / "broken.jpg").write_bytes(b"\xff\xd8 not really")
    code, printed, err = run_tool("predict", "--checkpoint", setup.ckpt, "--images", images,
                                  "--out", tmp_path / "p.json", *RUN)
    assert code == 0, err
    assert "warning: 1 of 5 images skipped (unreadable)" in err and "broken.jpg" in err
    assert len(json.loads((tmp_path / "p.json").read_text())["images"]) == 4


def test_no_readable_image_is_exit_1(setup, run_tool, tmp_path):
    (tmp_path / "a.png").write_bytes(b"nope")
    code, _, err = run_tool("predict", "--checkpoint", setup.ckpt, "--images", tmp_path,
                            "--out", tmp_path / "p.json", *RUN)
    assert code == 1 and "error: none of the 1 images can be read" in err
    assert not (tmp_path / "p.json").exists()


@pytest.mark.parametrize("victim", ["image", "checkpoint"])
def test_out_equal_to_an_input_is_refused(setup, run_tool, tmp_path, victim):
    images = tmp_path / "images"
    shutil.copytree(setup.b_images, images)
    ckpt = tmp_path / "last.pt"
    shutil.copy(setup.ckpt, ckpt)
    target = images / "000002.png" if victim == "image" else ckpt
    before = target.read_bytes()
    code, _, err = run_tool("predict", "--checkpoint", ckpt, "--images", images,
                            "--out", target, *RUN)
    assert code == 1 and "is an input of this command" in err
    assert target.read_bytes() == before


def test_bad_input_is_exit_1_and_usage_errors_exit_2(setup, run_tool, tmp_path):
    code, _, err = run_tool("predict", "--checkpoint", setup.ckpt, "--images", setup.b_images,
                            "--customer", "customer_z", "--out", tmp_path / "p.json", *RUN)
    assert code == 1 and "unknown taxonomy 'customer_z'" in err
    (tmp_path / "t.yaml").write_text("taxonomy: customer_b\nthresholds: {Car: 0.5}\n")
    code, _, err = run_tool("predict", "--checkpoint", setup.ckpt, "--images", setup.b_images,
                            "--thresholds", tmp_path / "t.yaml", "--out", tmp_path / "p.json",
                            *RUN)
    assert code == 1 and "thresholds are for taxonomy 'customer_b'" in err
    for argv in ([], ["--checkpoint", "c.pt"], ["--checkpoint", "c.pt", "--images", "d", "x.png"],
                 ["--checkpoint", "c.pt", "--images", "d", "--score-threshold", "2"]):
        assert run_tool("predict", *argv)[0] == 2


def test_every_option_has_help_showing_its_default():
    from taxdet.tools import predict
    for action in predict.build_parser()._actions:
        flag = "/".join(action.option_strings) or action.dest
        assert action.help and action.help.strip(), f"{flag} has no help"
        if action.option_strings and action.default not in (None, False, argparse.SUPPRESS):
            assert "default" in action.help, f"{flag} does not show its default"
