"""tools/make_demo_data.py: thin CLI over datasets.demo."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

from tests.paths import REPO

TOOL = REPO / "tools" / "make_demo_data.py"
_spec = importlib.util.spec_from_file_location("make_demo_data", TOOL)
_tool = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_tool)
main = _tool.main


def test_cli_writes_every_customer_and_the_test_split(tmp_path, capsys):
    rc = main([str(tmp_path), "--seed", "1", "--images-per-customer", "3", "--test-images", "2",
               "--image-size", "64", "--format", "png"])
    assert rc == 0
    for group, n in [("customer_a", 3), ("customer_b", 3), ("customer_c", 2), ("test", 2)]:
        coco = json.loads((tmp_path / group / "annotations.json").read_text())
        assert len(coco["images"]) == n                       # c: round(3 * 2/3) = 2
        assert all((tmp_path / group / "images" / im["file_name"]).suffix == ".png"
                   for im in coco["images"])
    out = capsys.readouterr().out
    assert f"wrote {tmp_path}" in out and "customer_c     2 images" in out


def test_cli_rejects_a_too_small_image_with_exit_code_1(tmp_path, capsys):
    assert main([str(tmp_path), "--image-size", "10"]) == 1
    assert "image_size must be at least 64, got 10" in capsys.readouterr().err


def test_script_runs_standalone(tmp_path):
    done = subprocess.run([sys.executable, str(TOOL), str(tmp_path), "--images-per-customer", "1",
                           "--test-images", "1", "--image-size", "64"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "customer_b" / "annotations_full.json").is_file()
