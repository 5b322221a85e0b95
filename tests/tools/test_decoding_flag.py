"""--decoding own|hierarchy|coverage on predict.py, evaluate.py and export.py: the name
reaches the predictor / exporter (unset: None, i.e. coverage); the older --[no-]hierarchy-
decoding stay its aliases."""

from __future__ import annotations

import pytest

from tests.tools.test_hierarchy_flags import seen  # noqa: F401  (the fixture)


@pytest.mark.parametrize("mode", ["own", "hierarchy", "coverage"])
def test_export_and_evaluate_pass_the_decoding_name(run_tool, seen, tmp_path, mode):  # noqa: F811
    code, _, stderr = run_tool("export", "--checkpoint", tmp_path / "c.pt", "--format",
                               "torchscript", "--out", tmp_path / "m.pt", "--decoding", mode)
    assert code == 1 and "stopped after the option was seen" in stderr
    (tmp_path / "gt.json").write_text('{"images": [], "annotations": [], "categories": []}')
    code, _, _ = run_tool("evaluate", "--gt", tmp_path / "gt.json", "--checkpoint",
                          tmp_path / "c.pt", "--decoding", mode)
    assert code == 1
    assert seen == [mode, mode]


def test_an_unknown_decoding_is_a_usage_error(run_tool, tmp_path):
    code, _, stderr = run_tool("export", "--checkpoint", tmp_path / "c.pt", "--out",
                               tmp_path / "m.pt", "--decoding", "max")
    assert code == 2 and "invalid choice: 'max'" in stderr
