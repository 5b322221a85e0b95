"""taxdet.detection.prediction.thresholds_file: the YAML format, read back and applied."""

from __future__ import annotations

import pytest

from taxdet.core.errors import ConfigError, InputNotFoundError
from taxdet.detection.prediction.thresholds_file import (
    Thresholds,
    apply_thresholds,
    read_thresholds,
)


def _r(cat, score):
    return {"image_id": 1, "category_id": cat, "bbox": [0, 0, 1, 1], "score": score}


def test_yaml_round_trip(tmp_path):
    t = Thresholds({"Car": 0.41, "Truck": None}, "customer_b", "precision >= 0.9", 0.5,
                   {"Car": {"f1": 0.7}})
    (tmp_path / "t.yaml").write_text(t.to_yaml())
    assert read_thresholds(tmp_path / "t.yaml") == t


def test_apply_uses_the_class_threshold_none_and_the_default():
    names = {1: "Car", 2: "Truck", 3: "Person"}
    t = Thresholds({"Car": 0.5, "Truck": None})
    results = [_r(1, 0.6), _r(1, 0.4), _r(2, 0.99), _r(3, 0.35), _r(3, 0.25)]
    assert apply_thresholds(results, names, t, 0.3) == [_r(1, 0.6), _r(3, 0.35)]
    assert apply_thresholds(results, names, None, 0.5) == [_r(1, 0.6), _r(2, 0.99)]


def test_names_and_taxonomy_are_checked():
    t = Thresholds({"Car": 0.5}, "customer_b")
    t.check_names(["Car", "Truck"], "customer_b", "t.yaml")
    with pytest.raises(ConfigError, match="t.yaml: thresholds are for taxonomy 'customer_b'"):
        t.check_names(["Car"], "customer_c", "t.yaml")
    with pytest.raises(ConfigError, match=r"thresholds for \['Car'\]"):
        Thresholds({"Car": 0.5}).check_names(["Vehicle"], "customer_c", "t.yaml")


@pytest.mark.parametrize("text, match", [
    ("thresholds: {Car: 1.5}", r"Car: 1.5 is not in \[0, 1\]"),
    ("thresholds: {Car: high}", "Car: expected a score"),
    ("thresholds: [Car]", "'thresholds' mapping"),
    ("thresholds: {Car: .5}\ntaxonomy: [x]", "taxonomy: expected a name"),
    ("{{", "not a readable YAML")])
def test_bad_files_name_the_problem(tmp_path, text, match):
    (tmp_path / "t.yaml").write_text(text)
    with pytest.raises(ConfigError, match=match):
        read_thresholds(tmp_path / "t.yaml")


def test_missing_file(tmp_path):
    with pytest.raises(InputNotFoundError):
        read_thresholds(tmp_path / "none.yaml")
