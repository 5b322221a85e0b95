"""The classifier CLIs: a fast --help, a tiny train + evaluate end to end, and exit 1 with
``error: ...`` on bad input (exit 2 for usage errors). Help on every option: test_cli_help.py."""

from __future__ import annotations

import contextlib
import io
import json
import subprocess
import sys
import textwrap

import pytest

from taxdet.tools import make_demo_data
from tests.conftest import _tool
from tests.factories import make_tiny_classification
from tests.paths import REPO

pytestmark = pytest.mark.usefixtures("one_thread")
TINY = ["--model", "mobilenetv3_small_050", "--image-size", "32", "--batch-size", "4",
        "--steps", "2", "--optim.warmup_steps", "1", "--run.progress", "false",
        "--device", "cpu", "--split.val_fraction", "0.3"]


def test_train_classifier_help_imports_no_torch():
    code = """
        import sys
        sys.argv = ["train_classifier.py", "--help"]
        from taxdet.tools import train_classifier
        try:
            train_classifier.main()
        except SystemExit:
            pass
        print("loaded:" + ",".join(m for m in ("torch", "timm", "cv2") if m in sys.modules))
    """
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                         capture_output=True, text=True, check=True).stdout
    assert "--loss.name" in out and out.strip().splitlines()[-1] == "loaded:"


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("cls_tools")
    taxonomies = make_tiny_classification(root)
    return taxonomies, root / "run"


@pytest.fixture(scope="module")
def trained(tiny_run):
    """A 2-step run through the CLI (its exit code and output)."""
    taxonomies, out = tiny_run
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(io.StringIO()):
        code = _tool("train_classifier").main(
            ["--taxonomies", str(taxonomies), "--output", str(out), "--loss", "hierarchical",
             *TINY])
    return code, buf.getvalue()


def test_train_then_evaluate_writes_json_markdown_and_plots(trained, tiny_run, run_tool):
    code, out = trained
    taxonomies, run = tiny_run
    assert code == 0 and '"steps": 2' in out and "loss hierarchical" in out
    code, out, err = run_tool("evaluate_classifier", "--checkpoint", run / "last.pt",
                              "--data", taxonomies, "--json", run / "eval.json",
                              "--markdown", run / "eval.md", "--plots", run)
    assert code == 0, err
    doc = json.loads((run / "eval.json").read_text())
    assert set(doc["ood"]) >= {"max_softmax", "max_logit", "energy"}
    assert doc["counts"]["ood_images"] > 0 and doc["counts"]["split"] == "val"
    assert "Accuracy per taxonomy" in (run / "eval.md").read_text()
    assert (run / "confusion.png").stat().st_size > 0 and (run / "reliability.png").is_file()
    assert "OOD:" in out


def test_evaluate_with_an_extra_ood_folder_counts_its_images(trained, tiny_run, run_tool):
    taxonomies, run = tiny_run
    dogs = taxonomies.parent / "crops" / "customer_a" / "Dog"
    code, _, err = run_tool("evaluate_classifier", "--checkpoint", run / "last.pt", "--data",
                            taxonomies, "--ood", dogs, "--json", run / "ood.json")
    assert code == 0, err
    counts = json.loads((run / "ood.json").read_text())["counts"]
    assert counts["ood_images"] == 2 * len(list(dogs.iterdir()))   # the dogs twice


@pytest.mark.parametrize("argv, message", [
    (["--checkpoint", "missing.pt"], "missing.pt: no such checkpoint"),
    (["--checkpoint", "{run}/last.pt", "--json", "{run}/last.pt"], "is an input of this command"),
    (["--checkpoint", "{run}/last.pt", "--ood", "nowhere"], "--ood nowhere: no such folder"),
    (["--checkpoint", "{run}/last.pt", "--batch-size", "0"], "--batch-size must be >= 1"),
])
def test_evaluate_exits_1_naming_the_problem(trained, tiny_run, run_tool, argv, message):
    taxonomies, run = tiny_run
    argv = [a.format(run=run) for a in argv] + ["--data", str(taxonomies)]
    code, _, err = run_tool("evaluate_classifier", *argv)
    assert code == 1 and err.startswith("error: ") and message in err


def test_train_exits_1_on_bad_input_and_2_on_a_bad_flag(tiny_run, tmp_path, run_tool):
    taxonomies, _ = tiny_run
    code, _, err = run_tool("train_classifier", "--taxonomies", tmp_path / "none",
                            "--output", tmp_path / "r", *TINY)
    assert code == 1 and "no such file or folder" in err
    code, _, err = run_tool("train_classifier", "--taxonomies", taxonomies, "--output",
                            tmp_path / "r", "--model", "resnet18x", *TINY[2:])
    assert code == 1 and "did you mean 'resnet18'" in err
    code, _, err = run_tool("train_classifier", "--loss", "hinge")
    assert code == 2 and "expected one of 'softmax', 'bce', 'focal', 'hierarchical'" in err


def test_make_demo_data_writes_the_classification_world(tmp_path, run_tool):
    code, out, err = run_tool("make_demo_data", tmp_path, "--classification",
                              "--images-per-customer", "2", "--crop-size", "24")
    assert code == 0, err
    summary = json.loads((tmp_path / "crops.json").read_text())["crops"]
    assert set(summary) == {"customer_a", "customer_b", "customer_c"}
    assert set(summary["customer_c"]) <= {"Vehicle", "Traffic_light"}
    assert "customer_a" in out
    assert make_demo_data.build_parser().parse_args([str(tmp_path)]).images_per_customer is None
