"""tools/evaluate.py: --run/--split, --source-ids and --cohort-by from the command line."""

import json

import pytest

from tests.detection.evaluation.eval_cases import coco_gt, det
from tests.paths import DRIVING

BOX = (10, 10, 40, 40)


@pytest.fixture
def files(tmp_path):
    """super.json-like ground truth: 4 images of customer_a (own ids 11..14, two months, one
    without a date), one person box each; a split with images 3, 4 on the val side;
    predictions in super ids that find images 1..3 only."""
    dates = ["2024-01-03", "2024-01-20", "2024-02-02", None]
    images = [(i, 100, 100, {"taxonomy": "customer_a", "source_image_id": 10 + i,
                             "content_hash": f"h{i}", "source_file": "/d/a.json",
                             **({"date_captured": d} if d else {})})
              for i, d in zip((1, 2, 3, 4), dates)]
    gt = coco_gt(images, [(1, "person")], [(i, 1, BOX) for i in (1, 2, 3, 4)])
    (tmp_path / "super.json").write_text(json.dumps(gt))
    entries = [{"id": i, "file_name": f"{i}.png", "content_hash": f"h{i}"} for i in (1, 2, 3, 4)]
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "split.json").write_text(json.dumps(
        {"format": 1, "val_fraction": 0.5, "salt": "s", "by": "content", "train": entries[:2],
         "val": entries[2:]}))
    (tmp_path / "res.json").write_text(json.dumps([det(i, 1, BOX, 0.9) for i in (1, 2, 3)]))
    return tmp_path


def args(files, *extra):
    return ["--gt", files / "super.json", "--predictions", files / "res.json",
            "--engine", "pycocotools", "--json", files / "out" / "r.json", *extra]


def test_split_val_scores_only_the_runs_validation_images(run_tool, files):
    code, out, err = run_tool("evaluate", *args(files, "--run", files / "run", "--split", "val"))
    assert code == 0, err
    assert f"split val of {files / 'run' / 'split.json'}: 2 of 2 images found in " \
        f"{files / 'super.json'} (matched by content_hash), 2 selected" in out
    assert "2 of 3 predictions are on images outside the selection: not scored" in out
    data = json.loads((files / "out" / "r.json").read_text())
    # val = images 3 (found) and 4 (missed): recall 1/2; precision 1 until then: AP = 51/101
    assert data["per_class"]["person"]["gt_boxes"] == 2
    assert data["AP"] == pytest.approx(51 / 101)
    assert data["split"] == {"file": str(files / "run" / "split.json"), "side": "val",
                             "matched_by": "content_hash", "wanted": 2, "found": 2, "selected": 2}


def test_split_train_and_all(run_tool, files):
    run_tool("evaluate", *args(files, "--run", files / "run", "--split", "train"))
    assert json.loads((files / "out" / "r.json").read_text())["AP"] == pytest.approx(1.0)
    run_tool("evaluate", *args(files, "--run", files / "run", "--split", "all"))
    assert json.loads((files / "out" / "r.json").read_text())["per_class"]["person"][
        "gt_boxes"] == 4


def test_cohorts_by_month_write_table_json_markdown_and_one_png_per_metric(run_tool, files):
    out_dir = files / "out"
    code, out, err = run_tool("evaluate", *args(files, "--cohort-by", "date_captured",
                                                "--markdown", out_dir / "r.md",
                                                "--plots", out_dir / "plots"))
    assert code == 0, err
    table = out[out.index("Cohorts by date_captured (month), plain"):].splitlines()
    assert [row.split()[:2] for row in table[2:5]] == [["2024-01", "2"], ["2024-02", "1"],
                                                       ["(none)", "1"]]
    cohorts = json.loads((out_dir / "r.json").read_text())["cohorts"]
    assert cohorts["key"] == "date_captured"
    assert {k: v["AP"] for k, v in cohorts["cohorts"].items()} == pytest.approx(
        {"2024-01": 1.0, "2024-02": 1.0, "(none)": 0.0})       # image 4 (no date) is missed
    assert "**Cohorts by date_captured (month), plain**" in (out_dir / "r.md").read_text()
    for metric in ("AP", "AP50", "AP75", "AR100"):
        assert (out_dir / "plots" / f"cohorts_{metric}.png").read_bytes()[:4] == b"\x89PNG"


def test_predictions_in_a_customers_own_ids_with_source_ids(run_tool, files):
    (files / "own.json").write_text(json.dumps([det(10 + i, 1, BOX, 0.9) for i in (1, 2, 3, 4)]))
    code, out, err = run_tool("evaluate", "--gt", files / "super.json", "--predictions",
                              files / "own.json", "--json", files / "r.json")
    assert code == 1 and "pass --source-ids customer_a" in err
    code, out, err = run_tool("evaluate", "--gt", files / "super.json", "--predictions",
                              files / "own.json", "--source-ids", "customer_a",
                              "--json", files / "r.json")
    assert code == 0, err
    assert json.loads((files / "r.json").read_text())["AP"] == pytest.approx(1.0)


def test_unknown_customer_gets_a_suggestion(run_tool, tmp_path):
    gt = coco_gt([(1, 100, 100)], [(1, "Human")], [(1, 1, BOX)])
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps([det(1, 1, BOX, 0.9)]))
    code, _, err = run_tool("evaluate", "--gt", tmp_path / "gt.json", "--predictions",
                            tmp_path / "res.json", "--taxonomies", DRIVING,
                            "--customer", "Customer_A")
    assert code == 1
    assert err.strip().endswith("known: customer_a, customer_b, customer_c; did you mean "
                                "'customer_a'?")


@pytest.mark.parametrize("extra, message", [
    (["--predictions", "res.json", "--split", "val"], "--split needs --run"),
    (["--checkpoint", "x.pt", "--source-ids", "customer_a"], "--source-ids needs --predictions"),
])
def test_usage_errors_exit_2(run_tool, files, extra, message):
    code, _, err = run_tool("evaluate", "--gt", files / "super.json", *extra)
    assert code == 2 and message in err


def test_the_split_file_is_never_overwritten(run_tool, files):
    before = (files / "run" / "split.json").read_bytes()
    code, _, err = run_tool("evaluate", "--gt", files / "super.json", "--predictions",
                            files / "res.json", "--run", files / "run",
                            "--json", files / "run" / "split.json")
    assert code == 1 and "split.json" in err
    assert (files / "run" / "split.json").read_bytes() == before
