"""Reading YAML within limits: size, values (aliases expanded), nesting, regular files only."""

import pytest

from taxdet.supertax import ConfigError, InputError, yamlpos
from taxdet.supertax.yamlpos import (
    Pos,
    YamlLimitError,
    YamlLimits,
    YamlSyntaxError,
    load_yaml,
    read_limited,
)
from tests.supertax.yamlfiles import write


def test_limits_default_to_the_documented_constants():
    assert (yamlpos.MAX_YAML_BYTES, yamlpos.MAX_YAML_NODES, yamlpos.MAX_YAML_DEPTH) == (
        2 * 1024 * 1024, 100_000, 100)
    assert YamlLimits() == YamlLimits(2 * 1024 * 1024, 100_000, 100)


def test_limits_follow_the_module_constants_at_creation(monkeypatch):
    monkeypatch.setattr(yamlpos, "MAX_YAML_DEPTH", 7)
    assert YamlLimits().max_depth == 7


@pytest.mark.parametrize("bad", [0, -1, True, 1.5, "10"])
def test_limits_must_be_positive_integers(bad):
    with pytest.raises(ConfigError, match=f"YamlLimits.max_nodes must be a positive integer, "
                                          f"got {bad!r}"):
        YamlLimits(max_nodes=bad)


def test_limit_errors_are_syntax_errors_and_input_errors():
    assert issubclass(YamlLimitError, YamlSyntaxError) and issubclass(YamlSyntaxError, InputError)


def test_file_of_exactly_max_bytes_is_read_one_more_is_not(tmp_path):
    path = write(tmp_path, "a.yaml", b"x: 1\n")
    assert read_limited(path, 5) == b"x: 1\n"
    with pytest.raises(YamlLimitError) as info:
        read_limited(path, 4)
    assert info.value.pos == Pos(str(path), 1, 1)
    assert info.value.message == ("file too large: 5 bytes or more, the limit is 4 bytes "
                                  "(MAX_YAML_BYTES)")


def test_a_folder_still_raises_is_a_directory_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        load_yaml(tmp_path)


def test_node_limit_counts_every_value_keys_included(tmp_path):
    path = write(tmp_path, "a.yaml", "a: [1, 2]\n")  # map, key, seq, 1, 2
    assert load_yaml(path, YamlLimits(max_nodes=5))[0] == {"a": [1, 2]}
    with pytest.raises(YamlLimitError, match="more than 4 YAML values"):
        load_yaml(path, YamlLimits(max_nodes=4))


def test_alias_uses_count_their_whole_anchor(tmp_path):
    path = write(tmp_path, "a.yaml", "a: &a [1, 2]\nb: *a\n")  # 1 + (1 + 3) + (1 + 3)
    assert load_yaml(path, YamlLimits(max_nodes=9))[0]["b"] == [1, 2]
    with pytest.raises(YamlLimitError) as info:
        load_yaml(path, YamlLimits(max_nodes=8))
    assert info.value.pos == Pos(str(path), 2, 4)  # the alias, not its anchor


def test_depth_limit_counts_levels_from_the_document(tmp_path):
    path = write(tmp_path, "a.yaml", "a: [[1]]\n")  # map 1, seq 2, seq 3, scalar 4
    assert load_yaml(path, YamlLimits(max_depth=4))[0] == {"a": [[1]]}
    with pytest.raises(YamlLimitError) as info:
        load_yaml(path, YamlLimits(max_depth=3))
    assert str(info.value) == (f"{path}:1:6: nested more than 3 levels deep (aliases expanded); "
                               "the limit is MAX_YAML_DEPTH")


def test_positions_of_aliased_values_are_their_anchor_s(tmp_path):
    doc, _ = load_yaml(write(tmp_path, "a.yaml", "a: &x {k: 1}\nb: *x\n"))
    assert doc["b"] is doc["a"] and doc.value_pos["b"] == Pos(str(tmp_path / "a.yaml"), 1, 4)
