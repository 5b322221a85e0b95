"""taxdet.detection.linting.customer_view: which class each driving customer would have drawn for an
object, and in which of its own label names."""

from __future__ import annotations

import pytest

from taxdet.detection.linting import CustomerView, customer_views

NAMES = ["person", "pedestrian_adult", "pedestrian_child", "vehicle", "car", "truck",
         "traffic_light"]


@pytest.mark.parametrize("customer, asked", [
    # A: Human (person) covers both pedestrians; no vehicle, no traffic light
    ("customer_a", ["person", "person", "person", None, None, None, None]),
    # B: person is labeled (exhaustive, both children labeled); vehicle is not (buses)
    ("customer_b", ["person", "pedestrian_adult", "pedestrian_child", None, "car", "truck",
                    None]),
    # C: Vehicle covers cars and trucks; no people
    ("customer_c", [None, None, None, "vehicle", "vehicle", "vehicle", "traffic_light"]),
])
def test_asked_class_is_the_deepest_labeled_class_on_the_path(taxset, customer, asked):
    view = CustomerView.of(taxset, customer)
    got = [None if (c := view.asked_class(k)) is None else NAMES[c] for k in range(len(NAMES))]
    assert got == asked
    assert [NAMES[c] if c >= 0 else None for c in view.asked_classes().tolist()] == asked


def test_label_names_are_the_customers_own(taxset):
    views = customer_views(taxset)
    assert views["customer_a"].label_name(0) == "Human"
    assert views["customer_c"].label_name(3) == "Vehicle"
    # B labels person only through its children: both names are offered
    assert views["customer_b"].label_name(0) == "Pedestrian_adult or Pedestrian_child"
    assert views["customer_a"].label_name(4) == "<car>"      # not A's: the super class name


def test_on_path_holds_for_ancestors_and_descendants_only(taxset):
    view = CustomerView.of(taxset, "customer_b")
    assert view.on_path(0, 2) and view.on_path(2, 0) and view.on_path(4, 4)
    assert not view.on_path(1, 2) and not view.on_path(4, 5) and not view.on_path(0, 3)
