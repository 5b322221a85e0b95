"""The validator tells a class no taxonomy labels that trains through its descendants' boxes
(and from which taxonomies its positives and negatives come) from one that never trains, and
states the one-object-one-path assumption behind it."""

from taxdet.supertax import WARNING, validate_files
from taxdet.supertax import validation_report as report
from taxdet.supertax.validate import CellSources, cell_sources
from tests.supertax.yamlfiles import DRIVING, driving_with, taxonomy, write

# the case: a non-exhaustive parent (vehicle) whose children two customers label
# (a: car, b: truck) but that no customer labels itself
CHILDREN_ONLY = {"a": {"Adult": "pedestrian_adult", "Child": "pedestrian_child", "Car": "car",
                       "Light": "traffic_light"},
                 "b": {"Truck": "truck"}}


def unlabeled_warnings(folder) -> dict[str, str]:
    """Class name -> its "labeled by no taxonomy" warning."""
    v = validate_files([folder])
    return {d.message.split("'")[1]: d.message for d in v.diagnostics
            if d.severity == WARNING and "is labeled by no taxonomy" in d.message}


def test_parent_labeled_only_through_children_is_trainable_and_says_from_whom(tmp_path):
    warnings = unlabeled_warnings(driving_with(tmp_path, **CHILDREN_ONLY))
    assert list(warnings) == ["vehicle"]  # person: exhaustive over a's adult + child
    assert warnings["vehicle"] == (
        "class 'vehicle' is labeled by no taxonomy, but it is trainable through its descendants "
        "(loss.certain_cells positives or more; never trained with none): one object is one "
        "path from a root down to its class, so a descendant's box is also a 'vehicle'. "
        "Positives: a (car), b (truck). Negatives: a at the boxes of classes off its path "
        "(certain_cells rows or all)")  # b's only class, truck, is under vehicle: not off-path


def test_trainable_parent_without_any_negative_says_so(tmp_path):
    driving_with(tmp_path, a={"Car": "car"}, b={"Truck": "truck"},
                 c={"Human": "person", "Light": "traffic_light"})
    # vehicle: positives from a and b; a's and b's boxes are all under vehicle, c's are off
    # its path -> negatives from c only. Drop c: no negatives at all.
    assert "Negatives: c at the boxes" in unlabeled_warnings(tmp_path)["vehicle"]
    (tmp_path / "c.yaml").unlink()
    assert unlabeled_warnings(tmp_path)["vehicle"].endswith(
        "Positives: a (car), b (truck). Negatives: none from any taxonomy, so nothing teaches "
        "it where it is absent")


def test_child_under_a_coarse_parent_only_gets_inherited_negatives(tmp_path):
    write(tmp_path, "zoo.yaml", "kind: super-taxonomy\nname: zoo\nclasses:\n"
          "  - name: animal\n    children: [{name: dog}, {name: cat}]\n")
    write(tmp_path, "a.yaml", taxonomy("a", {"Animal": "animal"}, super_name="zoo"))
    warnings = unlabeled_warnings(tmp_path)
    assert warnings["dog"] == (
        "class 'dog' is labeled by no taxonomy, nor is any of its descendants: no box is a "
        "positive for it, so it will never be trained to detect anything. Negatives only: a at "
        "background anchors (each labels an ancestor of it; certain_cells all)")


def test_class_without_any_certain_cell_is_dead(tmp_path):
    write(tmp_path, "driving.yaml", DRIVING)
    write(tmp_path, "a.yaml", taxonomy("a", {"Dog": None}))  # labels nothing of driving
    warnings = unlabeled_warnings(tmp_path)
    assert len(warnings) == 7
    assert warnings["car"] == ("class 'car' is labeled by no taxonomy, nor is any class on its "
                               "path or off it: it has no certain cell at all and will never be "
                               "trained")


def test_cell_sources_follow_the_tree(tmp_path):
    [ts] = validate_files([driving_with(tmp_path, a={"Human": "person"}, b={"Car": "car"},
                                        c={"Vehicle": "vehicle"})]).sets()
    sup, taxes = ts.super, ts.taxonomies
    col = sup.column
    # truck: vehicle (c) is its ancestor; person (a) and car (b) are off its path
    assert cell_sources(sup, taxes, col["truck"]) == CellSources({}, ["a", "b"], ["c"])
    # vehicle: b's car is a descendant (positives); a's person is off its path
    assert cell_sources(sup, taxes, col["vehicle"]) == CellSources({"b": ["car"]}, ["a"], [])
    # pedestrian_child: under a's person; b's car and c's vehicle are off its path
    assert cell_sources(sup, taxes, col["pedestrian_child"]) == CellSources({}, ["b", "c"],
                                                                            ["a"])


def test_report_states_the_one_path_assumption_under_the_legend(tmp_path):
    [ts] = validate_files([driving_with(tmp_path, **CHILDREN_ONLY)]).sets()
    lines = report.render_matrix(ts).splitlines()
    legend = lines.index(report.LEGEND)
    assert lines[legend + 1:] == report.ONE_PATH.splitlines()
    assert "one object = one path from a root down to its class" in report.ONE_PATH
    assert "certainly no class off that path" in report.ONE_PATH
