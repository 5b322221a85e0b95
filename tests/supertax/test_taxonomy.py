"""What a customer taxonomy labels: labeled set, missing mask, coverage, mapping back."""

import numpy as np
import pytest

from taxdet.supertax import (
    Coverage,
    Label,
    Taxonomy,
    coverage,
    label_columns,
    label_mask,
    missing_mask,
)
from taxdet.supertax.parse import parse_file
from taxdet.supertax.tree import SuperClass, SuperTaxonomy
from tests.supertax.yamlfiles import DRIVING, write

L, C, M = Coverage.LABELED, Coverage.COARSE, Coverage.MISSING


@pytest.fixture
def driving(tmp_path) -> SuperTaxonomy:
    return parse_file(write(tmp_path, "driving.yaml", DRIVING))[0]


def tax(**labels: str | None) -> Taxonomy:
    return Taxonomy("t", "driving", [Label(name, maps_to) for name, maps_to in labels.items()])


def names(sup: SuperTaxonomy, mask: np.ndarray) -> list[str]:
    return [sup.names[j] for j in np.flatnonzero(mask)]


def test_coarse_label_leaves_the_children_missing(driving):
    # "Human" -> person: the customer never tells adults from children.
    mask = label_mask(tax(Human="person"), driving)
    assert mask.dtype == bool and mask.shape == (7,)
    assert names(driving, mask) == ["person"]
    assert "pedestrian_adult" in names(driving, missing_mask(tax(Human="person"), driving))
    assert "pedestrian_child" in names(driving, missing_mask(tax(Human="person"), driving))


def test_all_children_labeled_makes_the_exhaustive_parent_labeled(driving):
    mask = label_mask(tax(Adult="pedestrian_adult", Child="pedestrian_child"), driving)
    assert names(driving, mask) == ["person", "pedestrian_adult", "pedestrian_child"]


def test_one_child_of_an_exhaustive_parent_leaves_the_parent_missing(driving):
    mask = label_mask(tax(Adult="pedestrian_adult"), driving)
    assert names(driving, mask) == ["pedestrian_adult"]


def test_all_children_of_a_non_exhaustive_parent_leave_the_parent_missing(driving):
    # car + truck: vehicle stays missing (a bus is a vehicle too).
    mask = label_mask(tax(Car="car", Truck="truck"), driving)
    assert names(driving, mask) == ["car", "truck"]
    assert names(driving, missing_mask(tax(Car="car", Truck="truck"), driving)) == [
        "person", "pedestrian_adult", "pedestrian_child", "vehicle", "traffic_light"]


def test_missing_mask_is_the_complement_of_the_label_mask(driving):
    t = tax(Human="person", Car="car")
    assert (missing_mask(t, driving) == ~label_mask(t, driving)).all()


def test_null_label_labels_no_class(driving):
    assert names(driving, label_mask(tax(Dog=None, Human="person"), driving)) == ["person"]
    assert not label_mask(tax(Dog=None), driving).any()


def deep_tree(middle_exhaustive: bool) -> SuperTaxonomy:
    """animal (exhaustive) -> [bird -> [duck, gull], fish]."""
    bird = SuperClass("bird", middle_exhaustive, [SuperClass("duck"), SuperClass("gull")])
    return SuperTaxonomy("zoo", [SuperClass("animal", True, [bird, SuperClass("fish")])])


def test_exhaustive_parents_are_labeled_recursively():
    t = Taxonomy("t", "zoo", [Label("D", "duck"), Label("G", "gull"), Label("F", "fish")])
    sup = deep_tree(middle_exhaustive=True)
    assert sup.names == ["animal", "bird", "duck", "gull", "fish"]
    # duck + gull -> bird (exhaustive); bird + fish -> animal (exhaustive)
    assert label_mask(t, sup).tolist() == [True, True, True, True, True]
    # bird not exhaustive: bird stays missing, so animal's children are not all labeled
    assert label_mask(t, deep_tree(middle_exhaustive=False)).tolist() == [False, False, True,
                                                                          True, True]


def test_coverage_tells_labeled_coarse_and_missing_apart(driving):
    assert coverage(tax(Human="person"), driving) == [L, C, C, M, M, M, M]
    assert coverage(tax(Vehicle="vehicle", Light="traffic_light"), driving) == [M, M, M, L, C, C, L]
    assert coverage(tax(Car="car", Truck="truck"), driving) == [M, M, M, M, L, L, M]


def test_label_columns_map_customer_names_back_to_columns(driving):
    t = tax(Human="person", Dog=None, Car="car")
    assert label_columns(t, driving) == {"Human": 0, "Dog": None, "Car": 4}


def test_label_lookup_by_customer_name():
    t = tax(Human="person")
    assert t.label("Human").maps_to == "person" and t.label("Robot") is None
