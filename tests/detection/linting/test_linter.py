"""taxdet.detection.linting: samples checked in their own customer's terms, issues ranked across
images, per-image scores, the JSON / Markdown report and the drawn grid."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from taxdet.datasets.sample import Sample
from taxdet.detection.linting import (
    ImagePredictions,
    Issue,
    customer_views,
    image_scores,
    lint_samples,
    rank_issues,
)
from taxdet.detection.linting.issue_grid import save_issue_grid
from taxdet.detection.linting.lint_report import markdown, write_json

CAR, TRUCK, LIGHT = 4, 5, 6


def sample(taxset, image_id, customer, boxes=(), classes=(), file="img.png") -> Sample:
    return Sample(image_id, file, 400, 300, customer, taxset.label_mask(customer),
                  np.array(boxes, np.float32).reshape(-1, 4), np.array(classes, np.int64),
                  np.ones(len(classes), np.float32), source_image_id=image_id * 10,
                  source_ann_ids=np.arange(1, len(classes) + 1))


def dets(*rows) -> ImagePredictions:
    return ImagePredictions(np.array([r[0] for r in rows], float).reshape(-1, 4),
                            np.array([r[1] for r in rows], float),
                            np.array([r[2] for r in rows], np.int64))


@pytest.fixture
def linted(taxset, tmp_path):
    Image.new("RGB", (400, 300), (90, 90, 90)).save(tmp_path / "img.png")
    f = str(tmp_path / "img.png")
    samples = [sample(taxset, 1, "customer_b", file=f),
               sample(taxset, 2, "customer_c", [[10, 10, 90, 60]], [3], file=f),
               sample(taxset, 3, "customer_a", file=f)]
    preds = {1: dets(([200, 100, 260, 140], 0.6, CAR)),
             2: dets(([10, 10, 90, 60], 0.9, LIGHT), ([200, 100, 260, 140], 0.4, TRUCK)),
             3: dets(([200, 100, 260, 140], 0.95, CAR))}    # A does not label cars
    return samples, lint_samples(samples, preds, taxset)


def test_issues_are_ranked_by_score_across_images_and_customers(linted):
    _, result = linted
    got = [(i.type, i.customer, round(i.score, 2)) for i in result.issues]
    # C's Vehicle box contradicted by a 0.9 traffic light (support 0) ranks first
    assert got == [("wrong_class", "customer_c", 0.9), ("missing_box", "customer_b", 0.6),
                   ("missing_box", "customer_c", 0.4)]
    assert result.images == {"customer_a": 1, "customer_b": 1, "customer_c": 1}


def test_image_score_is_the_chance_of_at_least_one_error(linted):
    _, result = linted
    scores = result.image_scores()
    assert scores[2] == pytest.approx(1 - (1 - 0.9) * (1 - 0.4))     # 0.94
    assert scores[1] == pytest.approx(0.6) and scores[3] == 0.0


def test_rank_issues_breaks_ties_stably():
    a = Issue("missing_box", 0.5, "b", 2, "f", [0, 0, 1, 1], "")
    b = Issue("bad_box", 0.5, "a", 9, "f", [0, 0, 1, 1], "")
    c = Issue("duplicate_box", 0.9, "z", 1, "f", [0, 0, 1, 1], "")
    assert rank_issues([a, b, c]) == [c, b, a]
    assert image_scores([a, c], [1, 2, 3]) == {1: pytest.approx(0.9), 2: 0.5, 3: 0.0}


def test_json_report_lists_the_top_issues_and_counts_them_all(linted, tmp_path):
    _, result = linted
    write_json(result, tmp_path / "issues.json", top=2)
    doc = json.loads((tmp_path / "issues.json").read_text())
    assert [i["rank"] for i in doc["issues"]] == [1, 2]
    first = doc["issues"][0]
    assert (first["label"], first["suggested"], first["ann_id"]) == ("Vehicle", "Traffic_light", 1)
    assert first["source_image_id"] == 20 and first["box"] == [10.0, 10.0, 80.0, 50.0]
    assert doc["counts"]["customer_c"] == {"missing_box": 1, "wrong_class": 1, "bad_box": 0,
                                           "duplicate_box": 0}
    assert doc["config"]["min_score"] == 0.3


def test_markdown_summary_has_a_row_per_customer_and_the_issues(linted):
    _, result = linted
    text = markdown(result, top=10)
    assert "| customer_a | 1 | 0 | 0 | 0 | 0 | 0 |" in text
    assert "| customer_c | 1 | 1 | 1 | 0 | 0 | 2 |" in text
    assert "| **all** | 3 | 2 | 1 | 0 | 0 | 3 |" in text
    assert "| 1 | 0.900 | wrong_class | customer_c | 20 img.png | 1 | Vehicle | Traffic_light |" \
        in text


def test_issue_grid_is_a_png_with_one_tile_per_issue(linted, taxset, tmp_path):
    samples, result = linted
    out = save_issue_grid(result.issues, {s.image_id: s for s in samples},
                          customer_views(taxset), tmp_path / "grid" / "top.png", count=3)
    grid = Image.open(out)
    # three tiles side by side, each 384 px wide (the 400 px image shrunk to TILE) + 4 px gaps
    assert grid.size[0] == 3 * 384 + 2 * 4
    red = np.array([214, 39, 40])                                     # missing_box colour
    assert (np.abs(np.asarray(grid.convert("RGB")).astype(int) - red).sum(-1) == 0).any()
