"""Loading a set of files: masks, ancestors, mapping back, hash, round trip, picking a super."""

import json
import shutil

import numpy as np
import pytest

import taxdet.supertax as supertax
from taxdet.supertax import TaxonomyError, TaxonomySet, discover, load
from tests.paths import REPO
from tests.supertax.yamlfiles import DRIVING, SHIPPED, driving_with, taxonomy, write

COLUMNS = ["person", "pedestrian_adult", "pedestrian_child", "vehicle", "car", "truck",
           "traffic_light"]


@pytest.fixture(scope="module")
def shipped() -> TaxonomySet:
    return load([SHIPPED])


def test_shipped_set_has_the_documented_columns_and_masks(shipped):
    assert shipped.names == COLUMNS and shipped.num_classes == 7
    assert [t.name for t in shipped.taxonomies] == ["customer_a", "customer_b", "customer_c"]
    assert shipped.index == {"customer_a": 0, "customer_b": 1, "customer_c": 2}
    assert shipped.masks.dtype == bool and shipped.masks.shape == (3, 7)  # [T, K]
    assert shipped.masks.astype(int).tolist() == [
        [1, 0, 0, 0, 0, 0, 0],   # A: Human -> person only
        [1, 1, 1, 0, 1, 1, 0],   # B: both pedestrians (person exhaustive), car, truck
        [0, 0, 0, 1, 0, 0, 1]]   # C: vehicle, traffic_light
    assert (shipped.label_mask("customer_b") == shipped.masks[1]).all()


def test_missing_classes_are_the_complement_in_column_order(shipped):
    assert shipped.missing_classes("customer_a") == COLUMNS[1:]
    assert shipped.missing_classes("customer_b") == ["vehicle", "traffic_light"]


def test_label_columns_and_weights_of_the_shipped_customers(shipped):
    assert shipped.label_columns("customer_a") == {"Human": 0, "Dog": None}
    assert shipped.label_columns("customer_b") == {"Pedestrian_adult": 1, "Pedestrian_child": 2,
                                                   "Car": 4, "Truck": 5}
    assert shipped.taxonomy("customer_b").label("Car").box_weight == 2.0
    assert shipped.taxonomy("customer_c").sampling_weight == 1.5


def test_ancestors_of_the_set_are_the_tree_s(shipped):
    assert shipped.ancestors is shipped.super.ancestors
    assert shipped.ancestors[COLUMNS.index("truck")].nonzero()[0].tolist() == [3, 5]


def test_data_paths_of_shipped_taxonomies_are_absolute_under_the_repo(shipped):
    [src] = shipped.taxonomy("customer_a").data
    assert src.annotations == str(REPO / "data" / "demo" / "customer_a" / "annotations.json")
    assert src.images == str(REPO / "data" / "demo" / "customer_a" / "images")


def test_coverage_per_taxonomy(shipped):
    # first letter of labeled / coarse / missing, columns in COLUMNS order
    cov = {name: "".join(c.value[0] for c in cells) for name, cells in shipped.coverage().items()}
    assert cov == {"customer_a": "lccmmmm", "customer_b": "lllmllm", "customer_c": "mmmlccl"}


def test_unknown_taxonomy_name_lists_the_known(shipped):
    with pytest.raises(KeyError, match="known: customer_a, customer_b, customer_c"):
        shipped.label_mask("customer_x")


def test_hash_is_stable_across_loads_file_order_and_folders(tmp_path, shipped):
    for f in sorted(SHIPPED.glob("*.yaml"), reverse=True):  # other names, other folders
        shutil.copy(f, tmp_path / f"copy_{f.name}")
    assert load([SHIPPED]).hash == shipped.hash
    assert load([tmp_path]).hash == shipped.hash
    assert len(shipped.hash) == 16 and int(shipped.hash, 16) >= 0


def edited_hash(tmp_path, old: str, new: str, name: str) -> str:
    """Hash of the shipped set with ``old`` replaced by ``new`` in file ``name``."""
    for f in SHIPPED.glob("*.yaml"):
        text = f.read_text()
        if f.name == name:
            assert old in text
            text = text.replace(old, new)
        (tmp_path / f.name).write_text(text)
    return load([tmp_path]).hash


def test_hash_changes_with_class_order(tmp_path, shipped):
    swapped = "      - name: truck\n      - name: car\n"
    assert edited_hash(tmp_path, "      - name: car\n      - name: truck\n", swapped,
                       "driving.yaml") != shipped.hash


def test_hash_changes_with_a_mapping(tmp_path, shipped):
    assert edited_hash(tmp_path, "maps_to: traffic_light", "maps_to: null",
                       "customer_c.yaml") != shipped.hash


def test_hash_changes_with_a_weight(tmp_path, shipped):
    assert edited_hash(tmp_path, "box_weight: 2.0", "box_weight: 3.0",
                       "customer_b.yaml") != shipped.hash


def test_hash_ignores_comments_and_data_paths(tmp_path, shipped):
    assert edited_hash(tmp_path, "data/demo/customer_a/images", "elsewhere/images",
                       "customer_a.yaml") == shipped.hash
    assert edited_hash(tmp_path, "# Customer A", "# Our customer A",
                       "customer_a.yaml") == shipped.hash


def test_from_dict_round_trips_through_json(shipped):
    again = TaxonomySet.from_dict(json.loads(json.dumps(shipped.to_dict())))
    assert again.to_dict() == shipped.to_dict() and again.hash == shipped.hash
    assert again.names == shipped.names
    assert (again.masks == shipped.masks).all() and (again.ancestors == shipped.ancestors).all()
    assert again.label_columns("customer_b") == shipped.label_columns("customer_b")
    assert again.taxonomy("customer_c").sampling_weight == 1.5


def test_invalid_files_raise_taxonomy_error_with_positions(tmp_path):
    driving_with(tmp_path, a={"Car": "cart"})
    with pytest.raises(TaxonomyError) as info:
        load([tmp_path])
    [d] = info.value.diagnostics
    assert f"{tmp_path / 'a.yaml'}:6:14: error: label 'Car' maps_to 'cart'" in str(info.value)
    assert d.message.endswith("did you mean 'car'?")


def test_load_needs_exactly_one_super_taxonomy(tmp_path):
    driving_with(tmp_path, a={"Human": "person"})
    write(tmp_path, "zoo.yaml", "kind: super-taxonomy\nname: zoo\nclasses: [{name: duck}]\n")
    write(tmp_path, "farm.yaml", taxonomy("farm", {"Duck": "duck"}, super_name="zoo"))
    with pytest.raises(TaxonomyError, match="expected exactly one super-taxonomy, found: driving, "
                                            "zoo; pass super_name to pick one"):
        load([tmp_path])
    zoo = load([tmp_path], super_name="zoo")
    assert zoo.names == ["duck"] and [t.name for t in zoo.taxonomies] == ["farm"]
    assert [t.name for t in load([tmp_path], super_name="driving").taxonomies] == ["a"]
    with pytest.raises(TaxonomyError, match="named 'city', found: driving, zoo"):
        load([tmp_path], super_name="city")


def test_load_without_a_super_taxonomy_fails(tmp_path):
    write(tmp_path, "zoo.yaml", "kind: super-taxonomy\nname: zoo\nclasses: [{name: duck}]\n")
    write(tmp_path / "only", "a.yaml", taxonomy("a", {"Duck": "duck"}, super_name="zoo"))
    with pytest.raises(TaxonomyError, match="unknown super-taxonomy 'zoo'"):
        load([tmp_path / "only"])


def test_load_of_a_missing_path_raises_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        load([tmp_path / "nope"])


def test_load_accepts_a_single_path(tmp_path):
    driving_with(tmp_path, a={"Human": "person"})
    assert load(tmp_path).names == COLUMNS and load(str(tmp_path)).names == COLUMNS


def test_discover_searches_folders_recursively_and_keeps_each_file_once(tmp_path):
    a = write(tmp_path / "x", "a.yaml", DRIVING)
    b = write(tmp_path / "x" / "deep", "b.yml", DRIVING)
    write(tmp_path / "x", "notes.txt", "not yaml")
    assert discover([tmp_path / "x", a, tmp_path / "x" / "." / "a.yaml"]) == [a, b]


def test_empty_set_has_a_zero_row_mask(tmp_path):
    write(tmp_path, "driving.yaml", DRIVING)
    ts = load([tmp_path])
    assert ts.masks.shape == (0, 7) and ts.taxonomies == []


def test_set_masks_agree_with_the_per_taxonomy_function(shipped):
    for row, tax in enumerate(shipped.taxonomies):
        assert np.array_equal(shipped.masks[row], supertax.label_mask(tax, shipped.super))
