"""tools/validate_taxonomies.py: report, exit codes 0 / 1 / 2, --json, runs from a checkout."""

import importlib.util
import json

import pytest

from tests.paths import REPO
from tests.supertax.yamlfiles import SHIPPED, driving_with, shipped_with_data, write

TOOL = REPO / "tools" / "validate_taxonomies.py"


def load_tool():
    spec = importlib.util.spec_from_file_location("validate_taxonomies", TOOL)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


tool = load_tool()


def test_shipped_taxonomies_exit_0_with_matrix(tmp_path, capsys):
    assert tool.main([str(shipped_with_data(tmp_path))]) == 0
    out = capsys.readouterr().out
    assert "driving.yaml:11:11: warning: taxonomy 'customer_b' labels every child" in out
    assert "customer_a    +            ~                 ~             .      .     .          ." \
        in out
    assert out.rstrip().endswith("valid: 4 files, 0 errors, 1 warning")


def test_invalid_file_exits_1_and_prints_the_positioned_error(tmp_path, capsys):
    driving_with(tmp_path, a={"Human": "persn"})
    assert tool.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert (f"{tmp_path / 'a.yaml'}:6:14: error: label 'Human' maps_to 'persn', which is not a "
            "class of super-taxonomy 'driving'; did you mean 'person'?") in out.splitlines()
    assert out.rstrip().endswith("invalid: 2 files, 1 error, 0 warnings")


def test_missing_path_exits_2(tmp_path, capsys):
    assert tool.main([str(SHIPPED), str(tmp_path / "nope")]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == f"validate_taxonomies.py: error: no such file or folder: " \
                           f"{tmp_path / 'nope'}\n"


def test_folder_without_yaml_exits_2(tmp_path, capsys):
    write(tmp_path, "notes.txt", "nothing here")
    assert tool.main([str(tmp_path)]) == 2
    assert "no .yaml/.yml files" in capsys.readouterr().err


def test_no_arguments_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        tool.main([])
    assert info.value.code == 2
    assert "the following arguments are required: paths" in capsys.readouterr().err


def test_json_gives_diagnostics_matrix_and_masks(tmp_path, capsys):
    assert tool.main([str(shipped_with_data(tmp_path)), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is True and len(out["diagnostics"]) == 1
    [sup] = out["super_taxonomies"]
    assert [t["label_mask"] for t in sup["taxonomies"]] == [
        [True, False, False, False, False, False, False],
        [True, True, True, False, True, True, False],
        [False, False, False, True, False, False, True]]


def test_json_of_invalid_files_exits_1(tmp_path, capsys):
    path = write(tmp_path, "bad.yaml", "kind: taxonomy\nname: [\n")
    assert tool.main(["--json", str(path)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["valid"] is False and out["super_taxonomies"] == []
    assert {k: out["diagnostics"][0][k] for k in ("file", "line", "col", "severity")} == {
        "file": str(path), "line": 3, "col": 1, "severity": "error"}
