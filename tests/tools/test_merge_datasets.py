"""tools/merge_datasets.py: writes super.json + report, exit 1 on bad data, 2 on usage."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from taxdet.datasets import SuperDataset
from tests.coco_files import write_coco
from tests.paths import DRIVING, REPO

_spec = importlib.util.spec_from_file_location("merge_datasets", REPO / "tools/merge_datasets.py")
tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(tool)
main = tool.main


@pytest.fixture
def taxonomies(tmp_path) -> Path:
    """The driving YAMLs with customer_a / customer_c pointing at tiny COCO files."""
    folder = tmp_path / "tax"
    folder.mkdir()
    (folder / "driving.yaml").write_text((DRIVING / "driving.yaml").read_text())
    data = {"customer_a": write_coco(tmp_path, "a", categories=["Human", "Dog"], annotations=[
                {"image_id": 1, "category_id": 1, "bbox": [1, 1, 5, 5]},
                {"image_id": 1, "category_id": 2, "bbox": [1, 1, 5, 5]}]),
            "customer_c": write_coco(tmp_path, "c", categories=["Vehicle", "Bicycle"], annotations=[
                {"image_id": 1, "category_id": 1, "bbox": [2, 2, 5, 5]},
                {"image_id": 1, "category_id": 2, "bbox": [2, 2, 5, 5]}])}
    for name, files in data.items():
        yaml = (DRIVING / f"{name}.yaml").read_text().split("\ndata:")[0]
        (folder / f"{name}.yaml").write_text(
            f"{yaml}\ndata:\n  - annotations: {files.annotations}\n    images: {files.images}\n")
    return folder


def test_writes_super_dataset_and_report(taxonomies, tmp_path, capsys):
    out, report = tmp_path / "out" / "super.json", tmp_path / "out" / "report.json"
    code = main(["--taxonomies", str(taxonomies), "--out", str(out), "--report", str(report),
                 "--allow-unmapped"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "customer_c     1       1       1           2        1      0       1       0" in printed
    assert f"wrote 2 images to {out}" in printed
    total = json.loads(report.read_text())["total"]["annotations"]
    assert (total["read"], total["kept"]) == (4, 2)        # 4 = 2 kept + Dog + Bicycle dropped
    import taxdet.supertax as supertax
    assert len(SuperDataset.load(out, supertax.load([taxonomies]))) == 2


def test_unmapped_category_exits_1_with_the_message(taxonomies, tmp_path, capsys):
    code = main(["--taxonomies", str(taxonomies), "--out", str(tmp_path / "s.json")])
    err = capsys.readouterr().err
    assert code == 1
    assert err.startswith("error: ") and "category id 2 'Bicycle' is not a label of taxonomy " \
        "'customer_c' (its labels: Vehicle, Traffic_light)" in err
    assert not (tmp_path / "s.json").exists()


def test_bad_taxonomy_exits_1(tmp_path, capsys):
    (tmp_path / "bad.yaml").write_text("kind: taxonomy\nname: x\n")
    args = ["--taxonomies", str(tmp_path / "bad.yaml"), "--out", str(tmp_path / "s.json")]
    assert main(args) == 1
    assert "error(s) in taxonomy files" in capsys.readouterr().err


def test_runs_from_the_repo_root_and_exits_2_on_usage(tmp_path):
    proc = subprocess.run([sys.executable, "tools/merge_datasets.py", "--out", "x.json"],
                          cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 2
    assert "the following arguments are required: --taxonomies" in proc.stderr
