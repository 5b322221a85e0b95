"""tools/predict.py with no flag but --customer: the customer's own category and image ids
(from the annotation file its training taxonomy names), images in sub-folders, the
customer's own top-k; and an error naming the flags when the ids cannot be found."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from types import SimpleNamespace

import pytest
from pycocotools.coco import COCO

import taxdet.supertax as supertax
from taxdet.datasets.demo import copy_taxonomies
from taxdet.detection.engine.checkpoint import save_atomic
from taxdet.detection.evaluation.results import NOT_PREDICTED
from tests.factories import make_checkpoint, make_demo
from tests.paths import DRIVING

pytestmark = pytest.mark.usefixtures("one_thread")

RUN = ("--device", "cpu", "--workers", "0")
CUSTOMER = "customer_b"


def renumbered(demo, folder):
    """customer_b's demo file with category ids x10 and image ids from 1000, half of the
    images moved into a sub-folder; written to ``folder``. Returns its path."""
    coco = json.loads((demo / CUSTOMER / "annotations.json").read_text())
    shutil.copytree(demo / CUSTOMER / "images", folder / "images")
    cats = {c["id"]: 10 * c["id"] for c in coco["categories"]}
    images = {img["id"]: 999 + img["id"] for img in coco["images"]}
    for c in coco["categories"]:
        c["id"] = cats[c["id"]]
    for k, img in enumerate(coco["images"]):
        img["id"] = images[img["id"]]
        if k % 2:
            (folder / "images" / "late").mkdir(exist_ok=True)
            shutil.move(folder / "images" / img["file_name"], folder / "images" / "late")
            img["file_name"] = f"late/{img['file_name']}"
    for a in coco["annotations"]:
        a["category_id"], a["image_id"] = cats[a["category_id"]], images[a["image_id"]]
    (folder / "annotations.json").write_text(json.dumps(coco))
    return folder / "annotations.json"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A checkpoint whose training config names taxonomy copies whose customer_b data: is
    the renumbered file (the new user's world)."""
    root = tmp_path_factory.mktemp("own_ids")
    taxset = supertax.load([DRIVING])
    demo = make_demo(root / "demo", taxset)
    gt = renumbered(demo, root / "b_own")
    taxonomies = copy_taxonomies(DRIVING, root / "taxonomies", lambda name: [
        {"annotations": str(gt if name == CUSTOMER else demo / name / "annotations.json"),
         "images": str(gt.parent / "images" if name == CUSTOMER else demo / name / "images")}])
    state = make_checkpoint(root / "last.pt", taxset)
    state["config"]["data"]["taxonomies"] = [str(taxonomies)]
    save_atomic(state, root / "last.pt")
    return SimpleNamespace(root=root, ckpt=root / "last.pt", gt=gt, images=gt.parent / "images",
                           taxonomies=taxonomies, demo=demo)


def test_no_flag_but_customer_writes_its_own_ids_and_load_res_accepts_them(world, run_tool):
    out = world.root / "pre.json"
    code, printed, err = run_tool("predict", "--checkpoint", world.ckpt, "--customer", CUSTOMER,
                                  "--images", world.images, "--out", out, *RUN)
    assert code == 0, err
    pre = json.loads(out.read_text())
    own = json.loads(world.gt.read_text())
    assert {c["id"]: c["name"] for c in pre["categories"]} == {
        c["id"]: c["name"] for c in own["categories"]} == {
        10: "Pedestrian_adult", 20: "Pedestrian_child", 30: "Car", 40: "Truck"}
    assert {(i["id"], i["file_name"]) for i in pre["images"]} == {
        (i["id"], i["file_name"]) for i in own["images"]}
    assert min(i["id"] for i in pre["images"]) == 1000
    assert pre["info"]["category_ids_from"] == str(world.gt)
    assert pre["info"]["image_ids_from"] == str(world.gt)
    assert {a["category_id"] for a in pre["annotations"]} <= {10, 20, 30, 40}


@pytest.mark.parametrize("fmt", ["coco", "results"])
def test_score_threshold_0_gives_every_image_exactly_max_detections(world, run_tool, fmt):
    """Counted within the customer's classes; loadRes takes them against its own file."""
    out = world.root / f"all_{fmt}.json"
    code, _, err = run_tool("predict", "--checkpoint", world.ckpt, "--customer", CUSTOMER,
                            "--images", world.images, "--score-threshold", "0",
                            "--max-detections", "37", "--format", fmt, "--out", out, *RUN)
    assert code == 0, err
    written = json.loads(out.read_text())
    results = written if fmt == "results" else [
        {k: a[k] for k in ("image_id", "category_id", "bbox", "score")}
        for a in written["annotations"]]
    dets = COCO(str(world.gt)).loadRes(results)
    assert len(dets.dataset["annotations"]) == len(results)
    per_image = Counter(r["image_id"] for r in results)
    assert sorted(per_image) == [1000, 1001, 1002, 1003]
    assert set(per_image.values()) == {37}
    assert {r["category_id"] for r in results} <= {10, 20, 30, 40}
    for r in results:
        x, y, w, h = r["bbox"]
        assert w >= 1 and h >= 1 and x >= 0 and y >= 0 and x + w <= 128.01 and y + h <= 128.01


def test_glob_file_names_are_relative_and_match_the_customer_file(world, run_tool):
    out = world.root / "glob.json"
    code, _, err = run_tool("predict", "--checkpoint", world.ckpt, "--customer", CUSTOMER,
                            str(world.images / "**" / "*.png"), "--out", out, *RUN)
    assert code == 0, err
    pre = json.loads(out.read_text())
    names = sorted(i["file_name"] for i in pre["images"])
    assert names == sorted(i["file_name"] for i in json.loads(world.gt.read_text())["images"])
    assert not any(n.startswith("/") for n in names)
    assert {i["id"] for i in pre["images"]} == {1000, 1001, 1002, 1003}


def test_ids_that_cannot_be_found_are_an_error_naming_the_flags(world, run_tool, tmp_path,
                                                               monkeypatch):
    ckpt = tmp_path / "plain.pt"
    # the checkpoint's config names the relative taxonomies/driving, whose data: entries point
    # at data/demo; run where they name no files (a checkout may hold data/demo)
    monkeypatch.chdir(tmp_path)
    make_checkpoint(ckpt, supertax.load([DRIVING]))
    code, _, err = run_tool("predict", "--checkpoint", ckpt, "--customer", CUSTOMER,
                            "--images", world.images, "--out", tmp_path / "p.json", *RUN)
    assert code == 1 and "--categories" in err and "--taxonomies" in err
    assert "cannot determine customer_b's own category ids" in err
    assert not (tmp_path / "p.json").exists()
    # another customer's file is refused
    code, _, err = run_tool("predict", "--checkpoint", ckpt, "--customer", CUSTOMER,
                            "--categories", world.demo / "customer_a" / "annotations.json",
                            "--images", world.images, "--out", tmp_path / "p.json", *RUN)
    assert code == 1 and "not customer_b's annotation file" in err
    # --taxonomies whose data: names the file supplies the ids
    code, _, err = run_tool("predict", "--checkpoint", ckpt, "--customer", CUSTOMER,
                            "--taxonomies", world.taxonomies, "--images", world.images,
                            "--out", tmp_path / "p.json", *RUN)
    assert code == 0, err
    assert {c["id"] for c in json.loads((tmp_path / "p.json").read_text())["categories"]} == {
        10, 20, 30, 40}


def test_classes_the_thresholds_leave_without_pre_labels_are_named(world, run_tool, tmp_path):
    (tmp_path / "t.yaml").write_text("taxonomy: customer_b\nthresholds: {Car: null, "
                                     "Truck: 0.999}\n")
    code, _, err = run_tool("predict", "--checkpoint", world.ckpt, "--customer", CUSTOMER,
                            "--images", world.images, "--thresholds", tmp_path / "t.yaml",
                            "--score-threshold", "0", "--out", tmp_path / "p.json", *RUN)
    assert code == 0, err
    assert "no pre-labels for 2 classes under --thresholds" in err
    assert "Car (its threshold is null" in err and "Truck (threshold 0.999 is above its best" in err


def test_evaluate_leaves_a_null_label_out_of_the_mean_without_taxonomies(world, run_tool,
                                                                         tmp_path):
    """customer_a's Dog (maps_to: null): the pre-label file names its checkpoint, whose
    taxonomies give the customer view; without the checkpoint, its not_predicted list."""
    gt = world.demo / "customer_a" / "annotations.json"
    pre = tmp_path / "a.json"
    code, _, err = run_tool("predict", "--checkpoint", world.ckpt, "--customer", "customer_a",
                            "--images", world.demo / "customer_a" / "images",
                            "--score-threshold", "0", "--out", pre, *RUN)
    assert code == 0, err
    code, printed, err = run_tool("evaluate", "--gt", gt, "--predictions", pre,
                                  "--json", tmp_path / "r.json")
    assert code == 0, err
    result = json.loads((tmp_path / "r.json").read_text())
    assert result["mode"] == "customer" and "taxonomies of its checkpoint" in printed
    assert result["per_class"]["Dog"]["note"] == NOT_PREDICTED
    data = json.loads(pre.read_text())
    data["info"]["checkpoint"] = str(tmp_path / "gone.pt")
    (tmp_path / "b.json").write_text(json.dumps(data))
    code, printed, err = run_tool("evaluate", "--gt", gt, "--predictions", tmp_path / "b.json",
                                  "--json", tmp_path / "p.json")
    assert code == 0, err
    plain = json.loads((tmp_path / "p.json").read_text())
    assert plain["mode"] == "plain" and "Dog not predicted (maps_to: null)" in printed
    assert plain["per_class"]["Dog"]["note"] == NOT_PREDICTED
    assert plain["AP"] == pytest.approx(result["AP"])
