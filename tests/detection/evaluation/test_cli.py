"""tools/evaluate.py: exit codes 0 / 1 / 2, printed table, JSON keys, Markdown, plots."""

import json
import runpy
import subprocess
import sys
from types import SimpleNamespace

import pytest

from tests.detection.evaluation.eval_cases import STAT_KEYS, coco_gt, det
from tests.paths import DRIVING, REPO

TOOL = REPO / "tools" / "evaluate.py"


@pytest.fixture(scope="module")
def tool():
    """The script's functions, loaded from its file (tools/ is not a package)."""
    return SimpleNamespace(**runpy.run_path(str(TOOL), run_name="evaluate_tool"))


@pytest.fixture
def files(tmp_path):
    gt = coco_gt([(1, 640, 480), (2, 640, 480)], [(1, "car"), (2, "person")],
                 [(1, 1, (10, 10, 50, 50)), (2, 2, (100, 100, 40, 80))])
    preds = [det(1, 1, (10, 10, 50, 50), 0.9), det(2, 2, (100, 100, 40, 70), 0.8)]
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps(preds))
    return tmp_path


def test_success_prints_table_and_writes_json_markdown_plots(tool, files, capsys):
    out = files / "out"
    code = tool.main(["--gt", str(files / "gt.json"), "--predictions", str(files / "res.json"),
                      "--json", str(out / "r.json"), "--markdown", str(out / "r.md"),
                      "--plots", str(out / "plots"), "--engine", "pycocotools"])
    assert code == 0
    printed = capsys.readouterr().out
    assert "COCO bbox, plain, engine pycocotools" in printed and "person" in printed
    data = json.loads((out / "r.json").read_text())
    assert set(STAT_KEYS) | {"per_class", "per_taxonomy", "mode", "engine", "counts"} <= set(data)
    assert data["mode"] == "plain" and set(data["per_class"]) == {"car", "person"}
    assert "| AP | AP50 |" in (out / "r.md").read_text()
    for png in ("ap_per_class.png", "pr_curves.png"):
        assert (out / "plots" / png).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bad_predictions_exit_1_with_the_record(tool, files, capsys):
    (files / "res.json").write_text(json.dumps([det(5, 1, (0, 0, 1, 1), 0.5)]))
    code = tool.main(["--gt", str(files / "gt.json"), "--predictions", str(files / "res.json")])
    assert code == 1
    assert "error:" in capsys.readouterr().err


def test_bad_taxonomy_path_exits_1(tool, files, capsys):
    code = tool.main(["--gt", str(files / "gt.json"), "--predictions", str(files / "res.json"),
                      "--taxonomies", str(files / "no_such_folder")])
    assert code == 1 and "no_such_folder" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [
    [], ["--gt", "x.json"], ["--gt", "x", "--predictions", "y", "--customer", "customer_a"]])
def test_usage_errors_exit_2(tool, argv):
    with pytest.raises(SystemExit) as e:
        tool.main(argv)
    assert e.value.code == 2


def test_customer_view_from_the_command_line(tool, tmp_path, capsys):
    gt = coco_gt([(1, 640, 480)], [(1, "Human"), (2, "Dog")], [(1, 1, (10, 10, 40, 90))])
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    (tmp_path / "res.json").write_text(json.dumps([det(1, 1, (10, 10, 40, 90), 0.9)]))
    code = tool.main(["--gt", str(tmp_path / "gt.json"), "--predictions",
                      str(tmp_path / "res.json"), "--taxonomies", str(DRIVING),
                      "--json", str(tmp_path / "r.json")])
    assert code == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert (data["mode"], data["customer"]) == ("customer", "customer_a")
    assert data["per_class"]["Dog"]["note"] == "not predicted"


def test_runs_as_a_script_from_the_repo_root(files):
    proc = subprocess.run([sys.executable, "tools/evaluate.py", "--gt", str(files / "gt.json"),
                           "--predictions", str(files / "res.json")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "AR100" in proc.stdout
