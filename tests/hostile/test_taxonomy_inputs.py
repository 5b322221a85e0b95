"""Hostile taxonomy YAML: alias bombs, recursion, huge or endless files, symlink loops, missing
data, broken super-taxonomies. Each is a clear error (exit 1 from the validator, an
``InputError`` from ``taxdet.supertax.load``) or a counted warning, naming the file, and nothing on
disk changes."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import taxdet.supertax as supertax
from taxdet.supertax import InputError, TaxonomyError
from tests.supertax.yamlfiles import DRIVING, driving_with, taxonomy, write

TOOL = "validate_taxonomies"


def alias_bomb(levels: int = 9, width: int = 10) -> str:
    """"Billion laughs": ``width ** levels`` strings from a few hundred bytes."""
    names = [chr(ord("a") + i) for i in range(levels)]
    lines = [f"{names[0]}: &{names[0]} [{', '.join(['lol'] * width)}]"]
    for prev, name in zip(names, names[1:]):
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * width)}]")
    return "\n".join(lines) + "\n"


def validate(run_tool, snapshot, *paths: Path) -> tuple[int, str, str]:
    """Run the validator on ``paths``; assert it changed nothing under them."""
    snap = snapshot(*paths)
    result = run_tool(TOOL, *paths)
    snap.unchanged()
    return result


def lines_of(out: str, severity: str) -> list[str]:
    return [line for line in out.splitlines() if f": {severity}: " in line]


def test_alias_bomb_is_refused_quickly_naming_the_file(tmp_path, run_tool, snapshot):
    bomb = write(tmp_path, "bomb.yaml", "kind: taxonomy\n" + alias_bomb())
    code, out, err = validate(run_tool, snapshot, tmp_path)
    assert code == 1, err
    [line] = lines_of(out, "error")
    assert line.startswith(f"{bomb}:6:") and "more than 100000 YAML values" in line
    assert "MAX_YAML_NODES" in line
    with pytest.raises(TaxonomyError, match="bomb.yaml:6:.*alias bomb"):
        supertax.load([tmp_path])


def test_shared_aliases_are_expanded_once_and_shared(tmp_path):
    from taxdet.supertax.yamlpos import load_yaml
    doc, _ = load_yaml(write(tmp_path, "ok.yaml", alias_bomb(levels=3)))  # 1,000 strings
    assert doc["c"][0] is doc["c"][9] is doc["b"]
    assert sum(len(b) for b in doc["c"]) == 100 and doc["c"][3][4] == doc["a"]


def test_node_limit_is_overridable(tmp_path, monkeypatch):
    from taxdet.supertax import yamlpos
    driving_with(tmp_path, a={"Human": "person"})
    with pytest.raises(TaxonomyError, match="more than 10 YAML values"):
        supertax.load([tmp_path], limits=yamlpos.YamlLimits(max_nodes=10))
    monkeypatch.setattr(yamlpos, "MAX_YAML_NODES", 10)
    with pytest.raises(TaxonomyError, match="driving.yaml:.*more than 10 YAML values"):
        supertax.load([tmp_path])


@pytest.mark.parametrize("text, where", [
    ("a: &a [*a]\n", "1:8"),
    ("a: &a\n  b: [1, *a]\n", "2:10"),
])
def test_recursive_alias_is_a_positioned_error(tmp_path, run_tool, snapshot, text, where):
    path = write(tmp_path, "self.yaml", text)
    code, out, err = validate(run_tool, snapshot, path)
    assert code == 1, err
    [line] = lines_of(out, "error")
    assert line.startswith(f"{path}:{where}: error: alias *a is inside the node it refers to "
                           "(anchor &a at line 1)")


@pytest.mark.parametrize("text, where", [
    ("kind: taxonomy\nlabels: " + "[" * 5000 + "]" * 5000 + "\n", "2:108"),  # level 101
    ("kind: taxonomy\nx:\n" + "".join(" " * (2 * i) + f"- k{i}:\n" for i in range(1000)),
     "52:101"),  # the mapping of line 52 is level 101
])
def test_deep_nesting_is_a_positioned_error_not_a_recursion_error(
        tmp_path, run_tool, snapshot, text, where):
    path = write(tmp_path, "deep.yaml", text)
    code, out, err = validate(run_tool, snapshot, path)
    assert code == 1, err
    [line] = lines_of(out, "error")
    assert line.startswith(f"{path}:{where}") and "nested more than 100 levels deep" in line
    assert "MAX_YAML_DEPTH" in line


def test_nesting_through_aliases_counts_too(tmp_path, run_tool, snapshot):
    path = write(tmp_path, "deep.yaml", "a: &a " + "[" * 60 + "]" * 60 + "\n"
                 "b: " + "[" * 50 + "*a" + "]" * 50 + "\n")
    code, out, _ = validate(run_tool, snapshot, path)
    assert code == 1
    [line] = lines_of(out, "error")
    assert line.startswith(f"{path}:2:54: error: nested more than 100 levels deep")


def test_file_over_the_size_limit_is_not_read(tmp_path, run_tool, snapshot):
    write(tmp_path, "driving.yaml", DRIVING)
    big = tmp_path / "big.yaml"
    with open(big, "wb") as f:
        f.truncate(3 * 1024 * 1024)  # sparse: nothing to write, nothing read
    code, out, err = validate(run_tool, snapshot, tmp_path)
    assert code == 1, err
    assert lines_of(out, "error") == [
        f"{big}:1:1: error: file too large: 3145728 bytes or more, the limit is 2097152 bytes "
        "(MAX_YAML_BYTES)"]


def test_size_limit_is_overridable(tmp_path):
    from taxdet.supertax.yamlpos import YamlLimits
    driving_with(tmp_path, a={"Human": "person"})
    with pytest.raises(TaxonomyError, match="driving.yaml:1:1: error: file too large"):
        supertax.load([tmp_path], limits=YamlLimits(max_bytes=100))
    assert supertax.load([tmp_path], limits=YamlLimits(max_bytes=1000)).num_classes == 7


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero")
def test_device_given_as_a_path_is_refused_unread(run_tool):
    code, out, err = run_tool(TOOL, "/dev/zero")
    assert code == 1, err
    assert lines_of(out, "error") == [
        "/dev/zero:1:1: error: not a regular file (a character device); only regular files are "
        "read"]
    with pytest.raises(TaxonomyError, match="/dev/zero:1:1: error: not a regular file"):
        supertax.load(["/dev/zero"])


def test_fifo_in_a_folder_is_reported_without_blocking(tmp_path, run_tool, snapshot):
    driving_with(tmp_path, a={"Human": "person"})
    os.mkfifo(tmp_path / "pipe.yaml")
    code, out, _ = validate(run_tool, snapshot, tmp_path)
    assert code == 1
    assert lines_of(out, "error") == [
        f"{tmp_path / 'pipe.yaml'}:1:1: error: not a regular file (a FIFO); only regular files "
        "are read"]


def test_self_looping_symlink_in_a_folder_is_an_error(tmp_path, run_tool, snapshot):
    driving_with(tmp_path, a={"Human": "person"})
    os.symlink("loop.yaml", tmp_path / "loop.yaml")
    code, out, err = validate(run_tool, snapshot, tmp_path)
    assert code == 1, err
    assert lines_of(out, "error") == [
        f"{tmp_path / 'loop.yaml'}:1:1: error: symlink loop (-> loop.yaml): cannot be read"]
    with pytest.raises(TaxonomyError, match="loop.yaml:1:1: error: symlink loop"):
        supertax.load([tmp_path])


def test_symlink_loop_named_directly_and_broken_symlink(tmp_path, run_tool):
    os.symlink("loop.yaml", tmp_path / "loop.yaml")
    os.symlink("gone.yaml", tmp_path / "dangling.yml")
    code, out, _ = run_tool(TOOL, tmp_path / "loop.yaml", tmp_path / "dangling.yml")
    assert code == 1
    assert lines_of(out, "error") == [
        f"{tmp_path / 'dangling.yml'}:1:1: error: broken symlink (-> gone.yaml): its target "
        "does not exist",
        f"{tmp_path / 'loop.yaml'}:1:1: error: symlink loop (-> loop.yaml): cannot be read"]


def test_symlinked_folder_loop_is_not_followed(tmp_path, run_tool, snapshot):
    driving_with(tmp_path, a={"Human": "person"})
    os.symlink(".", tmp_path / "again")
    code, out, err = validate(run_tool, snapshot, tmp_path)
    assert code == 0, out + err
    assert "valid: 2 files" in out


def test_missing_data_paths_are_warnings_at_their_position(tmp_path, run_tool, snapshot):
    write(tmp_path, "driving.yaml", DRIVING)
    (tmp_path / "there").mkdir()
    (tmp_path / "there" / "ann.json").write_text("{}")
    path = write(tmp_path, "a.yaml", taxonomy("a", {"Human": "person"}) + """\
data:
  - annotations: there/ann.json
    images: there
  - annotations: nope/ann.json
    images: there/ann.json
""")
    code, out, err = validate(run_tool, snapshot, tmp_path)
    assert code == 0, err
    assert lines_of(out, "warning")[:2] == [
        f"{path}:10:18: warning: data annotations {tmp_path / 'nope' / 'ann.json'} does not "
        "exist (needed to merge or train on this taxonomy)",
        f"{path}:11:13: warning: data images {tmp_path / 'there' / 'ann.json'} is not a folder "
        "(needed to merge or train on this taxonomy)"]
    assert "valid: 2 files, 0 errors, 8 warnings" in out  # + 6 classes labeled by no taxonomy
    assert [src.annotations for src in supertax.load([tmp_path]).taxonomy("a").data] == [
        str(tmp_path / "there" / "ann.json"), str(tmp_path / "nope" / "ann.json")]


def test_merging_a_missing_data_path_is_an_input_error_naming_it(tmp_path):
    from taxdet.datasets.merge import merge
    write(tmp_path, "driving.yaml", DRIVING)
    write(tmp_path, "a.yaml", taxonomy("a", {"Human": "person"})
          + "data:\n  - annotations: nope.json\n    images: imgs\n")
    with pytest.raises(InputError, match=f"{tmp_path / 'nope.json'}: annotation file not found"):
        merge(supertax.load([tmp_path]))


def test_nul_in_a_data_path_is_an_error(tmp_path, run_tool, snapshot):
    path = write(tmp_path, "a.yaml", taxonomy("a", {"Human": "person"})
                 + 'data:\n  - annotations: "a\\0b.json"\n    images: imgs\n')
    code, out, _ = validate(run_tool, snapshot, path)
    assert code == 1
    assert f"{path}:8:18: error: data entry annotations must not contain a NUL character" \
        in lines_of(out, "error")


def test_integer_too_long_to_convert_is_a_positioned_error(tmp_path, run_tool, snapshot):
    path = write(tmp_path, "a.yaml", taxonomy("a", {"Human": "person"})
                 + "sampling_weight: " + "1" * 5000 + "\n")
    code, out, _ = validate(run_tool, snapshot, path)
    assert code == 1
    [line] = lines_of(out, "error")
    assert line.startswith(f"{path}:7:18: error: cannot read value: Exceeds the limit")


@pytest.mark.parametrize("broken, first_error", [
    (DRIVING.replace("  - name: car\n", "  - name: [car\n"), "YAML syntax error"),
    ("kind: super-taxonomy\nname: driving\nclasses: []\n", "super-taxonomy has no classes"),
])
def test_broken_super_taxonomy_is_reported_once_not_per_customer(
        tmp_path, run_tool, snapshot, broken, first_error):
    driving_with(tmp_path, a={"Human": "person"}, b={"Car": "car"})
    sup = write(tmp_path, "driving.yaml", broken)
    code, out, err = validate(run_tool, snapshot, tmp_path)
    assert code == 1, err
    assert "unknown super-taxonomy" not in out
    problems = lines_of(out, "error") + lines_of(out, "warning")
    assert [line.startswith(f"{sup}:") for line in problems] == [True, True]
    assert first_error in problems[0]
    assert problems[1].endswith("taxonomies a, b map into it and were not checked against it")
    with pytest.raises(TaxonomyError) as info:
        supertax.load([tmp_path])
    assert first_error in str(info.value).splitlines()[1]
    assert "unknown super-taxonomy" not in str(info.value)


def test_unreadable_super_taxonomy_file_is_named_after_it(tmp_path, run_tool):
    driving_with(tmp_path, a={"Human": "person"})
    write(tmp_path, "driving.yaml", "kind: super-taxonomy\nname: [driving\n")
    _, out, _ = run_tool(TOOL, tmp_path)
    assert (f"{tmp_path / 'driving.yaml'}:3:1: warning: this file could not be read and probably "
            "holds super-taxonomy 'driving': taxonomies a map into it and were not checked "
            "against it") in out


def test_broken_super_taxonomy_with_a_name_says_it_failed_to_load(tmp_path, run_tool):
    driving_with(tmp_path, a={"Human": "person"})
    write(tmp_path, "driving.yaml", "kind: super-taxonomy\nname: driving\nclasses: []\n")
    _, out, _ = run_tool(TOOL, tmp_path)
    assert (f"{tmp_path / 'driving.yaml'}:3:10: warning: super-taxonomy 'driving' failed to load "
            "(see the errors in this file): taxonomies a map into it and were not checked "
            "against it") in out


def test_unknown_super_taxonomy_lists_files_that_could_not_be_read(tmp_path, run_tool):
    write(tmp_path, "zoo.yaml", "kind: super-taxonomy\nname: [zoo\n")
    path = write(tmp_path, "a.yaml", taxonomy("a", {"Human": "person"}))
    _, out, _ = run_tool(TOOL, tmp_path)
    assert (f"{path}:3:17: error: unknown super-taxonomy 'driving' (known: none loaded; could "
            f"not read: {tmp_path / 'zoo.yaml'})") in out


def test_two_super_taxonomies_validate_but_load_names_the_choices(tmp_path, run_tool, snapshot):
    driving_with(tmp_path, a={"Human": "person"})
    write(tmp_path, "zoo.yaml", "kind: super-taxonomy\nname: zoo\nclasses: [{name: duck}]\n")
    write(tmp_path, "farm.yaml", taxonomy("farm", {"Duck": "duck"}, super_name="zoo"))
    code, out, err = validate(run_tool, snapshot, tmp_path)
    assert code == 0, out + err
    with pytest.raises(InputError, match="found: driving, zoo"):
        supertax.load([tmp_path])
    assert supertax.load([tmp_path], super_name="zoo").names == ["duck"]


def test_unknown_taxonomy_name_is_an_input_error_and_a_key_error(tmp_path):
    ts = supertax.load([driving_with(tmp_path, a={"Human": "person"})])
    with pytest.raises(InputError) as info:
        ts.taxonomy("b")
    assert isinstance(info.value, KeyError)
    assert str(info.value) == "unknown taxonomy 'b'; known: a"
