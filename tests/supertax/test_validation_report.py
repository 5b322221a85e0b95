"""The validation report: matrix glyphs, summary, JSON."""

from taxdet.supertax import validate_files
from taxdet.supertax import validation_report as report
from tests.supertax.yamlfiles import DRIVING, SHIPPED, driving_with, shipped_with_data, write

SHIPPED_ROWS = [
    "taxonomy    person  pedestrian_adult  pedestrian_child  vehicle  car  truck  traffic_light",
    "customer_a    +            ~                 ~             .      .     .          .",
    "customer_b    +            +                 +             .      +     +          .",
    "customer_c    .            .                 .             +      ~     ~          +",
]


def test_matrix_rows_are_taxonomies_and_cells_are_glyphs():
    [ts] = validate_files([SHIPPED]).sets()
    lines = report.render_matrix(ts).splitlines()
    assert lines[0].startswith("coverage of super-taxonomy 'driving'")
    assert lines[0].endswith(f"K=7 classes, T=3 taxonomies, hash {ts.hash}")
    assert lines[1:5] == SHIPPED_ROWS
    assert lines[5] == report.LEGEND


def test_text_report_lists_diagnostics_then_matrix_then_summary(tmp_path):
    text = report.render_text(validate_files([shipped_with_data(tmp_path)])).splitlines()
    assert text[0].endswith("driving.yaml:11:11: warning: taxonomy 'customer_b' labels every child "
                            "of 'vehicle' but 'vehicle' is not marked exhaustive; its boxes of "
                            "those children train 'vehicle' as positives (certain cells), and "
                            "marking it exhaustive would also make this taxonomy's background "
                            "anchors certain 'vehicle' negatives")
    assert text[3:7] == SHIPPED_ROWS
    assert text[-1] == "valid: 4 files, 0 errors, 1 warning"


def test_invalid_report_has_no_hash_and_leaves_out_broken_files(tmp_path):
    driving_with(tmp_path, a={"Human": "person"}, b={"Car": "cart"})
    v = validate_files([tmp_path])
    text = report.render_text(v)
    assert "hash" not in text and "\ncustomer" not in text
    assert "\na " in text and "\nb " not in text  # b.yaml has the error
    assert text.endswith("(matrices leave out files with errors)\n\ninvalid: 3 files, 1 error, "
                         "0 warnings")
    assert report.exit_code(v) == report.EXIT_INVALID


def test_super_taxonomy_without_taxonomies_says_so(tmp_path):
    write(tmp_path, "driving.yaml", DRIVING)
    assert "(no taxonomy maps into 'driving')" in report.render_text(validate_files([tmp_path]))


def test_json_has_diagnostics_matrix_rows_and_masks(tmp_path):
    out = report.to_json(validate_files([shipped_with_data(tmp_path)]))
    assert (out["valid"], out["errors"], out["warnings"]) == (True, 0, 1)
    [d] = out["diagnostics"]
    assert (d["line"], d["col"], d["severity"]) == (11, 11, "warning")
    [sup] = out["super_taxonomies"]
    assert [c["name"] for c in sup["classes"]][:2] == ["person", "pedestrian_adult"]
    assert sup["classes"][1] == {"name": "pedestrian_adult", "column": 1, "parent": "person",
                                 "exhaustive": False}
    a = sup["taxonomies"][0]
    assert a["name"] == "customer_a"
    assert a["coverage"] == ["labeled", "coarse", "coarse", "missing", "missing", "missing",
                             "missing"]
    assert a["label_mask"] == [True, False, False, False, False, False, False]
    assert a["label_columns"] == {"Human": 0, "Dog": None}
    assert a["missing_classes"][0] == "pedestrian_adult"
