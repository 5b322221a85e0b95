"""tools/validate_taxonomies.py with data: boxes per class and taxonomy, read from the
annotation files; "did you mean" for category names that are not labels; --no-counts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.coco_files import write_coco
from tests.paths import DRIVING


def box(image_id, category_id, **kw):
    return {"image_id": image_id, "category_id": category_id, "bbox": [1, 1, 5, 5], **kw}


@pytest.fixture
def taxonomies(tmp_path) -> Path:
    """The driving YAMLs; customer_a's file has 2 Human boxes + 1 crowd, 1 Dog and 1 'human'
    (a typo); customer_b's file 3 Car boxes."""
    folder = tmp_path / "tax"
    folder.mkdir()
    (folder / "driving.yaml").write_text((DRIVING / "driving.yaml").read_text())
    data = {"customer_a": write_coco(tmp_path, "a", categories=["Human", "Dog", "human"],
                                     annotations=[box(1, 1), box(1, 1), box(1, 1, iscrowd=1),
                                                  box(1, 2), box(1, 3)], write_images=False),
            "customer_b": write_coco(tmp_path, "b", categories=["Car"],
                                     annotations=[box(1, 1)] * 3, write_images=False)}
    for name in ("customer_a", "customer_b", "customer_c"):
        yaml = (DRIVING / f"{name}.yaml").read_text().split("\ndata:")[0]
        files = data.get(name)
        if files:
            yaml += f"\ndata:\n  - annotations: {files.annotations}\n    images: {files.images}\n"
        (folder / f"{name}.yaml").write_text(yaml)
    return folder


def test_boxes_per_class_and_taxonomy_are_printed(run_tool, taxonomies):
    code, out, _ = run_tool("validate_taxonomies", taxonomies)
    assert code == 0
    lines = out.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("Boxes per class in the"))
    rows = [line.split() for line in lines[start + 1:start + 9]]
    assert rows[0] == ["class", "customer_a", "customer_b", "total"]
    assert rows[1] == ["person", "2", "0", "2"]               # the crowd box is not counted
    assert rows[5] == ["car", ".", "3", "3"]
    assert rows[6] == ["truck", ".", "0", "0", "no", "boxes"]
    assert (f"warning: {taxonomies.parent / 'a' / 'annotations.json'}: category 'human' (1 boxes)"
            " is not a label of taxonomy 'customer_a'; did you mean 'Human'?") in lines
    assert lines[-1].startswith("valid:")


def test_no_counts_skips_reading_the_data(run_tool, taxonomies):
    code, out, _ = run_tool("validate_taxonomies", taxonomies, "--no-counts")
    assert code == 0 and "Boxes per class" not in out


def test_json_has_the_box_counts(run_tool, taxonomies):
    code, out, _ = run_tool("validate_taxonomies", taxonomies, "--json")
    counts = json.loads(out)["box_counts"]["driving"]
    assert counts["boxes_per_class"]["customer_b"]["car"] == 3
    assert counts["files"][0]["labels"] == {"Human": 2, "Dog": 1, "human": 1}
    assert len(counts["warnings"]) == 1


def test_an_unreadable_annotation_file_is_a_warning_not_a_failure(run_tool, taxonomies):
    (taxonomies.parent / "b" / "annotations.json").write_text("{not json")
    code, out, _ = run_tool("validate_taxonomies", taxonomies)
    assert code == 0
    assert f"warning: {taxonomies.parent / 'b' / 'annotations.json'}: not counted: " in out


def test_a_taxonomy_without_a_readable_file_gets_no_column(run_tool, taxonomies):
    (taxonomies.parent / "b" / "annotations.json").unlink()    # a data-path warning instead
    code, out, _ = run_tool("validate_taxonomies", taxonomies)
    header = next(line for line in out.splitlines() if line.strip().startswith("class "))
    assert code == 0 and header.split() == ["class", "customer_a", "total"]
    assert "data annotations" in out and "does not exist" in out
