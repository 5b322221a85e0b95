"""--hierarchy-decoding / --no-hierarchy-decoding on predict.py, evaluate.py (with --checkpoint)
and export.py: default None (auto), and the choice reaches the predictor / exporter."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from taxdet.core.errors import InputError
from taxdet.detection.export import exporter
from taxdet.detection.prediction import predictor

FLAGS = {"auto": [], "on": ["--hierarchy-decoding"], "off": ["--no-hierarchy-decoding"]}
WANT = {"auto": None, "on": True, "off": False}


class Stop(InputError):
    """Raised by the stand-ins once they have seen the option: exit 1, nothing else runs."""


@pytest.fixture
def seen(monkeypatch):
    """The ``hierarchy_decoding`` keyword the tools pass to ``load_predictor`` /
    ``build_export`` (the tools import them when they run, so the patched ones are used)."""
    got = []

    def record(*args, **kwargs):
        got.append(kwargs.get("hierarchy_decoding", "not passed"))
        raise Stop("stopped after the option was seen")
    monkeypatch.setattr(predictor, "load_predictor", record)
    monkeypatch.setattr(exporter, "build_export", record)
    return got


@pytest.mark.parametrize("mode", sorted(FLAGS))
def test_predict_passes_the_choice_to_the_predictor(run_tool, seen, tmp_path, mode):
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / "a.png")
    code, _, stderr = run_tool("predict", "--checkpoint", tmp_path / "c.pt", "--images", tmp_path,
                               "--out", tmp_path / "out" / "p.json", "--workers", "0",
                               *FLAGS[mode])
    assert code == 1 and "stopped after the option was seen" in stderr
    assert seen == [WANT[mode]]


@pytest.mark.parametrize("mode", sorted(FLAGS))
def test_evaluate_passes_the_choice_to_the_predictor(run_tool, seen, tmp_path, mode):
    (tmp_path / "gt.json").write_text('{"images": [], "annotations": [], "categories": []}')
    code, _, stderr = run_tool("evaluate", "--gt", tmp_path / "gt.json", "--checkpoint",
                               tmp_path / "c.pt", *FLAGS[mode])
    assert code == 1 and "stopped after the option was seen" in stderr
    assert seen == [WANT[mode]]


@pytest.mark.parametrize("mode", sorted(FLAGS))
def test_export_passes_the_choice_to_the_exporter(run_tool, seen, tmp_path, mode):
    code, _, stderr = run_tool("export", "--checkpoint", tmp_path / "c.pt", "--format",
                               "torchscript", "--out", tmp_path / "m.pt", *FLAGS[mode])
    assert code == 1 and "stopped after the option was seen" in stderr
    assert seen == [WANT[mode]]
