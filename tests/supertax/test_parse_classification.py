"""``data:`` entries declaring classification datasets: parsed beside the COCO ones, resolved
against the YAML file's folder, and refused (with file:line) when an entry mixes kinds."""

from taxdet.supertax import ERROR, ClassificationSource
from taxdet.supertax.parse import parse_file
from tests.supertax.yamlfiles import write

HEAD = "kind: taxonomy\nname: a\nsuper_taxonomy: driving\nlabels:\n" \
       "  - {name: Human, maps_to: person}\n"


def test_classification_entries_are_kept_apart_from_the_coco_ones(tmp_path):
    path = write(tmp_path, "a.yaml", HEAD + "data:\n"
                 "  - {annotations: ann.json, images: img}\n"
                 "  - classification: crops/a\n"
                 "  - classification_csv: ../lists/a.csv\n")
    tax, diagnostics = parse_file(path)
    assert diagnostics == []
    assert [d.annotations for d in tax.data] == [str(tmp_path / "ann.json")]
    assert tax.classification == [
        ClassificationSource("folder", str(tmp_path / "crops" / "a")),
        ClassificationSource("csv", str((tmp_path / ".." / "lists" / "a.csv").resolve()))]
    assert tax.classification[0].pos.line == 8  # where the path is written


def test_an_entry_mixing_coco_and_classification_keys_is_an_error_at_its_line(tmp_path):
    path = write(tmp_path, "a.yaml", HEAD + "data:\n"
                 "  - classification: crops/a\n    annotations: ann.json\n")
    tax, diagnostics = parse_file(path)
    assert tax is None
    (d,) = diagnostics
    assert d.severity == ERROR and d.pos.line == 7
    assert "either a COCO dataset" in d.message and "classification, annotations" in d.message


def test_an_empty_classification_path_is_an_error(tmp_path):
    path = write(tmp_path, "a.yaml", HEAD + "data:\n  - classification_csv: ''\n")
    tax, diagnostics = parse_file(path)
    assert tax is None and "classification_csv must not be empty" in diagnostics[0].message


def test_the_taxonomy_hash_ignores_classification_entries(tmp_path):
    plain, _ = parse_file(write(tmp_path, "p.yaml", HEAD))
    with_data, _ = parse_file(write(tmp_path, "d.yaml", HEAD + "data:\n  - classification: x\n"))
    assert plain.to_dict() == with_data.to_dict()
