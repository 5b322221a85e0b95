"""Reading one file: every per-file error and warning, with file, line, column and message."""

import pytest

from taxdet.supertax import ERROR, WARNING, Diagnostic, SuperTaxonomy, Taxonomy
from taxdet.supertax.parse import parse_file
from taxdet.supertax.yamlpos import Pos
from tests.supertax.yamlfiles import DRIVING, taxonomy, write


def only(path) -> Diagnostic:
    """The single diagnostic of ``path``; the file must yield no object if it is an error."""
    obj, diagnostics = parse_file(path)
    assert len(diagnostics) == 1, diagnostics
    if diagnostics[0].severity == ERROR:
        assert obj is None
    return diagnostics[0]


def error(path, line: int, col: int, message: str) -> Diagnostic:
    return Diagnostic(Pos(str(path), line, col), ERROR, message)


def test_valid_files_give_objects_and_no_diagnostics(tmp_path):
    sup, sup_diags = parse_file(write(tmp_path, "driving.yaml", DRIVING))
    tax, tax_diags = parse_file(write(tmp_path, "a.yaml", taxonomy("a", {"Human": "person"})))
    assert isinstance(sup, SuperTaxonomy) and isinstance(tax, Taxonomy)
    assert sup_diags == [] and tax_diags == []
    assert tax.labels[0].name == "Human" and tax.labels[0].maps_to == "person"
    assert tax.sampling_weight == 1.0 and tax.labels[0].box_weight == 1.0 and tax.data == []


def test_yaml_syntax_error_points_at_the_problem(tmp_path):
    path = write(tmp_path, "t.yaml", "kind: taxonomy\nname: [a, b\nlabels: []\n")
    d = only(path)
    assert (d.pos.file, d.pos.line, d.pos.col) == (str(path), 3, 7)
    assert d.message.startswith("YAML syntax error: expected ',' or ']'")
    assert "while parsing a flow sequence at line 2, col 7" in d.message


def test_bad_indentation_is_a_syntax_error(tmp_path):
    path = write(tmp_path, "t.yaml", "kind: taxonomy\n  name: a\n")
    assert only(path) == error(path, 2, 7, "YAML syntax error: mapping values are not allowed here")


def test_two_documents_in_one_file_are_rejected(tmp_path):
    path = write(tmp_path, "t.yaml", "kind: taxonomy\n---\nkind: taxonomy\n")
    assert only(path) == error(path, 2, 1, "YAML syntax error: expected a single document in the "
                                           "stream at line 1, col 1, but found another document")


def test_file_that_is_not_utf8_names_the_byte_and_its_position(tmp_path):
    # "café" in Latin-1: é is the single byte 0xe9, the 4th character of "caf\xe9" on line 2
    path = write(tmp_path, "t.yaml", b"kind: taxonomy\nname: caf\xe9\n")
    assert only(path) == error(path, 2, 10, "not valid UTF-8 (byte 0xe9); save the file as UTF-8")


def test_utf8_column_counts_characters_not_bytes(tmp_path):
    # "ü" is 2 bytes in UTF-8 but one column: the bad byte is character 9 of line 1
    path = write(tmp_path, "t.yaml", "name: ü\xff".encode().replace(b"\xc3\xbf", b"\xff"))
    assert only(path).pos == Pos(str(path), 1, 8)


def test_control_character_is_rejected_with_its_position(tmp_path):
    path = write(tmp_path, "t.yaml", "kind: taxonomy\nname: a\x01b\n")
    assert only(path) == error(path, 2, 8, "character #x0001 is not allowed in YAML")


@pytest.mark.parametrize("text, got", [("- kind: taxonomy\n", "a list"), ("just text\n", "str"),
                                       ("", "null")])
def test_file_that_is_not_a_mapping(tmp_path, text, got):
    path = write(tmp_path, "t.yaml", text)
    assert only(path) == error(path, 1, 1, f"a taxonomy file must be a mapping, got {got}")


def test_unknown_kind_suggests_the_closest(tmp_path):
    path = write(tmp_path, "t.yaml", "kind: super_taxonomy\nname: driving\n")
    assert only(path) == error(path, 1, 7, "unknown kind 'super_taxonomy'; expected one of "
                                           "super-taxonomy, taxonomy; did you mean "
                                           "'super-taxonomy'?")


def test_missing_kind(tmp_path):
    path = write(tmp_path, "t.yaml", "name: driving\nclasses: []\n")
    assert only(path) == error(path, 1, 1, "missing required key 'kind' in taxonomy file")


@pytest.mark.parametrize("key, what", [("name", "super-taxonomy"), ("classes", "super-taxonomy")])
def test_missing_required_key_in_super_taxonomy(tmp_path, key, what):
    text = "\n".join(line for line in DRIVING.splitlines() if not line.startswith(key)) + "\n"
    if key == "classes":  # drop the whole class list
        text = "kind: super-taxonomy\nname: driving\n"
    path = write(tmp_path, "t.yaml", text)
    assert only(path) == error(path, 1, 1, f"missing required key {key!r} in {what}")


@pytest.mark.parametrize("key", ["name", "super_taxonomy", "labels"])
def test_missing_required_key_in_taxonomy(tmp_path, key):
    lines = ["kind: taxonomy\n", "name: a\n", "super_taxonomy: driving\n",
             "labels: [{name: H, maps_to: person}]\n"]
    text = "".join(line for line in lines if not line.startswith(key))
    path = write(tmp_path, "t.yaml", text)
    assert only(path) == error(path, 1, 1, f"missing required key {key!r} in taxonomy")


def test_missing_maps_to_points_at_the_label(tmp_path):
    path = write(tmp_path, "t.yaml", """\
        kind: taxonomy
        name: a
        super_taxonomy: driving
        labels:
          - name: Human
        """)
    assert only(path) == error(path, 5, 5, "missing required key 'maps_to' in label (use null "
                                           "for labels outside the super-taxonomy)")


def test_missing_class_name_points_at_the_class(tmp_path):
    path = write(tmp_path, "t.yaml", DRIVING.replace("- name: car", "- exhaustive: false"))
    assert only(path) == error(path, 11, 9, "missing required key 'name' in class")


def test_duplicate_class_name_anywhere_in_the_tree(tmp_path):
    # a "person" under vehicle, line 12 (where truck was): the root person is at line 4
    path = write(tmp_path, "t.yaml", DRIVING.replace("name: truck", "name: person"))
    assert only(path) == error(path, 12, 15, "duplicate class name 'person' in super-taxonomy "
                                             "(first defined at line 4)")


def test_duplicate_label_name(tmp_path):
    path = write(tmp_path, "t.yaml", taxonomy("a", {"Human": "person", "Car": "car"})
                 .replace("name: Car", "name: Human"))
    assert only(path) == error(path, 7, 11, "duplicate label name 'Human' in taxonomy "
                                            "(first defined at line 5)")


def test_duplicate_key_in_a_mapping(tmp_path):
    path = write(tmp_path, "t.yaml", DRIVING + "name: again\n")
    assert only(path) == error(path, 14, 1, "duplicate key 'name' in a taxonomy file")


@pytest.mark.parametrize("value, message", [
    ('""', "class name must not be empty"),
    ("'   '", "class name must not be empty"),
    ("5", "class name must be a string, got int 5"),
    ("true", "class name must be a string, got bool True"),
    ("[a, b]", "class name must be a string, got a list ['a', 'b']"),
    ("null", "class name must be a string, got null None"),
])
def test_class_name_must_be_a_non_empty_string(tmp_path, value, message):
    path = write(tmp_path, "t.yaml", DRIVING.replace("name: car", f"name: {value}"))
    assert only(path) == error(path, 11, 15, message)


@pytest.mark.parametrize("value, message", [
    ('""', "label name must not be empty"),
    ("12", "label name must be a string, got int 12"),
])
def test_label_name_must_be_a_non_empty_string(tmp_path, value, message):
    path = write(tmp_path, "t.yaml", taxonomy("a", {"Human": "person"})
                 .replace("name: Human", f"name: {value}"))
    assert only(path) == error(path, 5, 11, message)


@pytest.mark.parametrize("key, line", [("name", 2), ("super_taxonomy", 3)])
def test_taxonomy_names_must_be_non_empty(tmp_path, key, line):
    path = write(tmp_path, "t.yaml", taxonomy("a", {"Human": "person"})
                 .replace(f"{key}: {'a' if key == 'name' else 'driving'}\n", f"{key}: ''\n"))
    assert only(path) == error(path, line, len(key) + 3, f"taxonomy {key} must not be empty")


def test_maps_to_must_be_a_class_name_or_null(tmp_path):
    path = write(tmp_path, "t.yaml", taxonomy("a", {"Human": "3"}))
    assert only(path) == error(path, 6, 14, "label maps_to must be a class name or null, got 3")


@pytest.mark.parametrize("maps_to", ["null", "~", ""])
def test_label_mapping_to_null_is_fine(tmp_path, maps_to):
    path = write(tmp_path, "t.yaml", taxonomy("a", {"Dog": "person"})
                 .replace("maps_to: person", f"maps_to: {maps_to}"))
    tax, diagnostics = parse_file(path)
    assert diagnostics == [] and tax.labels[0].maps_to is None


BAD_WEIGHTS = [("-1", "-1"), ("0", "0"), ("0.0", "0.0"), (".nan", "nan"), (".inf", "inf"),
               ("-.inf", "-inf"), ("true", "True"), ("'2'", "'2'"), ("null", "None")]


@pytest.mark.parametrize("value, shown", BAD_WEIGHTS)
def test_box_weight_must_be_positive_and_finite(tmp_path, value, shown):
    path = write(tmp_path, "t.yaml", taxonomy("a", {"Car": "car"}) + f"    box_weight: {value}\n")
    assert only(path) == error(path, 7, 17, f"label box_weight must be a positive finite number, "
                                            f"got {shown}")


@pytest.mark.parametrize("value, shown", BAD_WEIGHTS)
def test_sampling_weight_must_be_positive_and_finite(tmp_path, value, shown):
    path = write(tmp_path, "t.yaml", taxonomy("a", {"Car": "car"}) + f"sampling_weight: {value}\n")
    assert only(path) == error(path, 7, 18, f"taxonomy sampling_weight must be a positive finite "
                                            f"number, got {shown}")


def test_integer_and_float_weights_are_read_as_floats(tmp_path):
    path = write(tmp_path, "t.yaml", taxonomy("a", {"Car": "car"}) + "    box_weight: 2\n"
                 "sampling_weight: 1.5\n")
    tax, diagnostics = parse_file(path)
    assert diagnostics == []
    assert tax.labels[0].box_weight == 2.0 and isinstance(tax.labels[0].box_weight, float)
    assert tax.sampling_weight == 1.5


def test_exhaustive_must_be_a_boolean(tmp_path):
    path = write(tmp_path, "t.yaml", DRIVING.replace("exhaustive: true", "exhaustive: yes please"))
    assert only(path) == error(path, 5, 17, "class exhaustive must be true or false, "
                                            "got 'yes please'")


def test_exhaustive_leaf_is_a_warning(tmp_path):
    path = write(tmp_path, "t.yaml", DRIVING + "    exhaustive: true\n")
    d = only(path)
    assert d == Diagnostic(Pos(str(path), 14, 17), WARNING,
                           "class 'traffic_light' is marked exhaustive but has no children")


def test_empty_class_list_is_an_error(tmp_path):
    path = write(tmp_path, "t.yaml", "kind: super-taxonomy\nname: driving\nclasses: []\n")
    assert only(path) == error(path, 3, 10, "super-taxonomy has no classes")


def test_null_class_list_is_one_error(tmp_path):
    path = write(tmp_path, "t.yaml", "kind: super-taxonomy\nname: driving\nclasses: null\n")
    assert only(path) == error(path, 3, 10, "super-taxonomy classes must be a list, got null")


def test_class_that_is_not_a_mapping(tmp_path):
    path = write(tmp_path, "t.yaml", DRIVING.replace("- name: traffic_light", "- traffic_light"))
    assert only(path) == error(path, 13, 5, "class must be a mapping, got str")


def test_taxonomy_without_labels_is_a_warning(tmp_path):
    path = write(tmp_path, "t.yaml", taxonomy("a", {}) .replace("labels:", "labels: []"))
    d = only(path)
    assert (d.severity, d.pos.line, d.pos.col) == (WARNING, 4, 9)
    assert d.message == "taxonomy has no labels: its images will train no class"


def test_unknown_key_is_a_warning_with_a_suggestion(tmp_path):
    path = write(tmp_path, "t.yaml", taxonomy("a", {"Car": "car"}) + "    box_wieght: 2.0\n")
    tax, diagnostics = parse_file(path)
    assert tax is not None and tax.labels[0].box_weight == 1.0
    assert diagnostics == [Diagnostic(Pos(str(path), 7, 5), WARNING,
                                      "unknown key 'box_wieght' in label (ignored; known: name, "
                                      "maps_to, box_weight); did you mean 'box_weight'?")]


def test_unknown_top_level_key_is_a_warning(tmp_path):
    path = write(tmp_path, "t.yaml", DRIVING + "clases: []\n")
    assert only(path).message == ("unknown key 'clases' in super-taxonomy file (ignored; known: "
                                  "kind, name, classes); did you mean 'classes'?")


def test_data_paths_resolve_relative_to_the_yaml_file(tmp_path):
    path = write(tmp_path / "taxonomies" / "cust", "a.yaml", taxonomy("a", {"Car": "car"}) + """\
data:
  - annotations: ../../data/a/train.json
    images: ../../data/a/images
  - annotations: /abs/val.json
    images: /abs/images
""")
    tax, diagnostics = parse_file(path)
    assert diagnostics == []
    assert tax.data[0].annotations == str(tmp_path / "data" / "a" / "train.json")
    assert tax.data[0].images == str(tmp_path / "data" / "a" / "images")
    assert (tax.data[1].annotations, tax.data[1].images) == ("/abs/val.json", "/abs/images")


def test_data_entry_needs_annotations_and_images(tmp_path):
    path = write(tmp_path, "t.yaml", taxonomy("a", {"Car": "car"}) + "data:\n  - images: im\n")
    assert only(path) == error(path, 8, 5, "missing required key 'annotations' in data entry")


def test_empty_data_is_fine(tmp_path):
    path = write(tmp_path, "t.yaml", taxonomy("a", {"C": "car"}) + "data:\n")
    tax, diagnostics = parse_file(path)
    assert diagnostics == [] and tax.data == []


def test_unreadable_path_raises_os_error(tmp_path):
    with pytest.raises(IsADirectoryError):
        parse_file(tmp_path)
