"""Checks across files: references, name clashes, coverage warnings (file, line, col, message)."""

from taxdet.supertax import ERROR, WARNING, Diagnostic, validate_files
from taxdet.supertax.yamlpos import Pos
from tests.supertax.yamlfiles import DRIVING, driving_with, taxonomy, write

# Labels every class of DRIVING (person through its exhaustive children): no warnings.
EVERYTHING = {"Adult": "pedestrian_adult", "Child": "pedestrian_child", "Vehicle": "vehicle",
              "Car": "car", "Truck": "truck", "Light": "traffic_light"}


def diagnostics(folder) -> list[Diagnostic]:
    return validate_files([folder]).diagnostics


def at(path, line: int, col: int, severity: str, message: str) -> Diagnostic:
    return Diagnostic(Pos(str(path), line, col), severity, message)


def test_labels_covering_every_class_give_no_diagnostics(tmp_path):
    v = validate_files([driving_with(tmp_path, a=EVERYTHING)])
    assert v.ok and v.diagnostics == []
    assert [s.name for s in v.supers] == ["driving"] and [t.name for t in v.taxonomies] == ["a"]


def test_unknown_super_taxonomy_points_at_the_reference_and_suggests(tmp_path):
    write(tmp_path, "driving.yaml", DRIVING)
    path = write(tmp_path, "a.yaml", taxonomy("a", {"Human": "person"}, super_name="drivng"))
    assert diagnostics(tmp_path) == [at(path, 3, 17, ERROR, "unknown super-taxonomy 'drivng' "
                                        "(known: driving); did you mean 'driving'?")]


def test_unknown_super_taxonomy_when_none_is_loaded(tmp_path):
    path = write(tmp_path, "a.yaml", taxonomy("a", {"Human": "person"}))
    assert diagnostics(tmp_path) == [at(path, 3, 17, ERROR, "unknown super-taxonomy 'driving' "
                                        "(known: none loaded)")]


def test_maps_to_unknown_class_points_at_maps_to_and_suggests_the_closest(tmp_path):
    driving_with(tmp_path, a={"Adult": "pedestrian_adlt", "Car": "Car"})
    path = tmp_path / "a.yaml"
    assert diagnostics(tmp_path) == [
        at(path, 6, 14, ERROR, "label 'Adult' maps_to 'pedestrian_adlt', which is not a class of "
                               "super-taxonomy 'driving'; did you mean 'pedestrian_adult'?"),
        at(path, 8, 14, ERROR, "label 'Car' maps_to 'Car', which is not a class of "
                               "super-taxonomy 'driving'; did you mean 'car'?")]


def test_maps_to_unknown_class_without_a_close_name_has_no_suggestion(tmp_path):
    driving_with(tmp_path, a={"Zebra": "zebra"})
    [d] = diagnostics(tmp_path)
    assert d.message.endswith("which is not a class of super-taxonomy 'driving'")


def test_two_super_taxonomies_with_the_same_name(tmp_path):
    first = write(tmp_path, "a_driving.yaml", DRIVING)
    second = write(tmp_path, "b_driving.yaml", DRIVING)
    assert diagnostics(tmp_path) == [at(second, 2, 7, ERROR, "super-taxonomy name 'driving' is "
                                        f"already used by {first}")]


def test_two_taxonomies_with_the_same_name(tmp_path):
    driving_with(tmp_path, a=EVERYTHING)
    second = write(tmp_path, "b.yaml", taxonomy("a", {"Human": "person"}))
    assert diagnostics(tmp_path) == [at(second, 2, 7, ERROR, "taxonomy name 'a' is already used "
                                        f"by {tmp_path / 'a.yaml'}")]


def test_two_labels_mapping_to_one_class_warn_at_the_second(tmp_path):
    driving_with(tmp_path, a={**EVERYTHING, "Kid": "pedestrian_child"})
    # 6 labels of 2 lines from line 5 on: Kid's maps_to is on line 5 + 2 * 6 + 1 = 18
    assert diagnostics(tmp_path) == [at(tmp_path / "a.yaml", 18, 14, WARNING,
                                        "labels 'Child' and 'Kid' both map to 'pedestrian_child': "
                                        "ambiguous when reporting back in customer names")]


def test_super_class_no_taxonomy_labels_warns_at_the_class(tmp_path):
    driving_with(tmp_path, a={"Human": "person", "Vehicle": "vehicle"})
    sup = tmp_path / "driving.yaml"
    # person 4:11 and vehicle 9:11 are labeled; their children are only coarse (a's boxes of
    # the other parent are off their path, a's background is under their labeled parent);
    # traffic_light 13:11 is off the path of both parents' boxes
    dead = ("is labeled by no taxonomy, nor is any of its descendants: no box is a positive for "
            "it, so it will never be trained to detect anything. Negatives only: a at the boxes "
            "of classes off its path (certain_cells rows or all)")
    inherited = "; a at background anchors (each labels an ancestor of it; certain_cells all)"
    unlabeled = [("pedestrian_adult", 7, 15, inherited), ("pedestrian_child", 8, 15, inherited),
                 ("car", 11, 15, inherited), ("truck", 12, 15, inherited),
                 ("traffic_light", 13, 11, "")]
    assert diagnostics(tmp_path) == [
        at(sup, line, col, WARNING, f"class {name!r} {dead}{more}")
        for name, line, col, more in unlabeled]


def test_class_labeled_by_any_taxonomy_is_not_reported(tmp_path):
    driving_with(tmp_path, a={"Adult": "pedestrian_adult", "Child": "pedestrian_child"},
                 b={"Vehicle": "vehicle", "Car": "car", "Truck": "truck", "Light": "traffic_light"})
    assert diagnostics(tmp_path) == []  # person: exhaustive over a's two labels; the rest by b


def test_unlabeled_class_warnings_wait_until_there_are_no_errors(tmp_path):
    driving_with(tmp_path, a={"Human": "person"}, b={"Bad": "nope"})
    assert [d.severity for d in diagnostics(tmp_path)] == [ERROR]


def test_exhaustive_parent_with_some_children_labeled_warns_at_the_label(tmp_path):
    driving_with(tmp_path, a={"Adult": "pedestrian_adult", "Vehicle": "vehicle",
                              "Light": "traffic_light"},
                 b={"Human": "person"})  # so that pedestrian_child is only coarse, not unlabeled
    assert [d for d in diagnostics(tmp_path) if "exhaustive" in d.message] == [
        at(tmp_path / "a.yaml", 6, 14, WARNING,
           "taxonomy 'a' labels only 1 of 2 children of exhaustive class 'person' "
           "(not: pedestrian_child), so 'person' stays missing for it")]


def test_parent_with_all_children_labeled_but_not_exhaustive_says_what_marking_gains(tmp_path):
    labels = {k: v for k, v in EVERYTHING.items() if k != "Vehicle"}
    driving_with(tmp_path, a=labels, b={"Vehicle": "vehicle"})  # b: so vehicle is not unlabeled
    assert diagnostics(tmp_path) == [
        at(tmp_path / "driving.yaml", 9, 11, WARNING,
           "taxonomy 'a' labels every child of 'vehicle' but 'vehicle' is not marked exhaustive; "
           "its boxes of those children train 'vehicle' as positives (certain cells), and marking "
           "it exhaustive would also make this taxonomy's background anchors certain 'vehicle' "
           "negatives")]


def test_parent_labeled_directly_gives_no_exhaustive_warning(tmp_path):
    driving_with(tmp_path, a={"Human": "person", "Adult": "pedestrian_adult", **EVERYTHING})
    assert [d for d in diagnostics(tmp_path) if "exhaustive" in d.message] == []


def test_shipped_driving_taxonomies_are_valid_with_one_warning(tmp_path):
    from tests.supertax.yamlfiles import shipped_with_data
    v = validate_files([shipped_with_data(tmp_path)])
    assert v.ok
    assert [d.message for d in v.diagnostics] == [
        "taxonomy 'customer_b' labels every child of 'vehicle' but 'vehicle' is not marked "
        "exhaustive; its boxes of those children train 'vehicle' as positives (certain cells), "
        "and marking it exhaustive would also make this taxonomy's background anchors certain "
        "'vehicle' negatives"]


def test_file_with_errors_still_gets_its_references_checked(tmp_path):
    driving_with(tmp_path, a={"Car": "cars", "Truck": "truck"})
    path = tmp_path / "a.yaml"
    path.write_text(path.read_text() + "sampling_weight: 0\n")
    assert [(d.pos.line, d.pos.col, d.message[:30]) for d in diagnostics(tmp_path)] == [
        (9, 18, "taxonomy sampling_weight must "),
        (6, 14, "label 'Car' maps_to 'cars', wh")]


def test_file_missing_its_super_taxonomy_key_gets_no_extra_reference_error(tmp_path):
    write(tmp_path, "a.yaml", "kind: taxonomy\nname: a\nlabels: []\n")
    assert [d.message for d in diagnostics(tmp_path)] == [
        "missing required key 'super_taxonomy' in taxonomy",
        "taxonomy has no labels: its images will train no class"]


def test_missing_data_paths_warn_unless_switched_off(tmp_path):
    driving_with(tmp_path, a=EVERYTHING)
    path = tmp_path / "a.yaml"
    path.write_text(path.read_text() + "data:\n  - annotations: a.json\n    images: imgs\n")
    assert diagnostics(tmp_path) == [
        at(path, 18, 18, WARNING, f"data annotations {tmp_path / 'a.json'} does not exist "
                                  "(needed to merge or train on this taxonomy)"),
        at(path, 19, 13, WARNING, f"data images {tmp_path / 'imgs'} does not exist "
                                  "(needed to merge or train on this taxonomy)")]
    assert validate_files([tmp_path], check_data_paths=False).diagnostics == []
