"""The validator names each column the taxonomies leave without background negatives, its
decoding, and the one-line YAML change that would train it (or why that change is unsafe)."""

from __future__ import annotations

import numpy as np

from taxdet.supertax import load, validate_files
from taxdet.supertax import validation_report as report
from taxdet.supertax.decoding_rule import never_background, untrusted_columns
from taxdet.supertax.validate import decoding_notes
from tests.paths import WAREHOUSE
from tests.supertax.test_taxonomy_certain_cells import CHILDREN_ONLY
from tests.supertax.yamlfiles import driving_with


def test_a_parent_whose_children_customers_cover_gets_the_exhaustive_line():
    ts = load([WAREHOUSE])
    [note] = decoding_notes(ts.super, ts.taxonomies)
    assert note.startswith("class 'container' will get no background negative")
    assert "scores it as the max over its descendants (carton, tote), its own column ignored" \
        in note
    assert "add `exhaustive: true` under `- name: container` (" in note
    assert "warehouse.yaml:6)" in note
    assert "customer_a, customer_b label all of its children (carton, tote)" in note
    assert "only if every 'container' is one of them" in note


def test_a_parent_no_customer_covers_is_told_why_exhaustive_is_unsafe(tmp_path):
    # a labels car (and person's children), b truck: nobody labels all of vehicle's children
    ts = load([driving_with(tmp_path, **CHILDREN_ONLY)])
    [note] = decoding_notes(ts.super, ts.taxonomies)
    assert note.startswith("class 'vehicle' will get no background negative")
    assert "`exhaustive: true` is not suggested: no taxonomy labels all of its children " \
           "(car, truck) (a labels car; b labels truck)" in note
    assert "label 'vehicle' in a taxonomy (`maps_to: vehicle`)" in note


def test_a_childless_column_is_excluded_and_an_unsupported_parent_too(tmp_path):
    ts = load([driving_with(tmp_path, a={"Human": "person"})])
    notes = {n.split("'")[1]: n for n in decoding_notes(ts.super, ts.taxonomies)}
    assert list(notes) == ["vehicle", "car", "truck", "traffic_light"]
    assert all("excludes it from predictions" in n for n in notes.values())
    assert "`exhaustive: true` cannot help a class without children" in notes["traffic_light"]


def test_the_rule_decodes_from_trusted_descendants_only():
    # 0 > 1 > 2, 0 > 3: 0 and 1 unseen, 2 trusted, 3 unseen (excluded)
    anc = np.eye(4, dtype=bool)
    anc[1, 0] = anc[2, 0] = anc[2, 1] = anc[3, 0] = True
    unseen = np.array([True, True, False, True])
    decoded, excluded = untrusted_columns(anc, unseen, unseen)
    assert decoded.tolist() == [True, True, False, False]
    assert excluded.tolist() == [False, False, False, True]
    assert never_background(anc, np.array([False, True, False, False])).tolist() == [
        True, False, False, True]


def test_the_report_prints_the_notes_in_text_and_json(tmp_path):
    v = validate_files([driving_with(tmp_path, **CHILDREN_ONLY)])
    text = report.render_text(v)
    [ts] = v.sets()
    [note] = decoding_notes(ts.super, ts.taxonomies)
    assert f"{report.DECODING_TITLE}\n- {note}" in text
    [sup] = report.to_json(v)["super_taxonomies"]
    assert sup["decoding_notes"] == [note]
