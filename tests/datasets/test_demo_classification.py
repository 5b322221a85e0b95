"""The demo's classification world: crops labeled in each customer's names, reproducible."""

from __future__ import annotations

import numpy as np

from taxdet.datasets.demo import DemoConfig
from taxdet.datasets.demo_classification import crop_square, generate_crops


def test_crops_are_labeled_in_each_customers_names_and_repeat_exactly(taxset, tmp_path):
    cfg = DemoConfig(images_per_customer=3)
    summary = generate_crops(tmp_path / "one", taxset, cfg, crop_size=24)
    generate_crops(tmp_path / "two", taxset, cfg, crop_size=24)
    for name, labels in summary.items():
        own = {lab.name for lab in taxset.taxonomy(name).labels}
        assert set(labels) <= own and labels                      # folders = its labels
        folders = {p.name for p in (tmp_path / "one" / name).iterdir()}
        assert folders == set(labels)
    files = sorted(p.relative_to(tmp_path / "one") for p in (tmp_path / "one").rglob("*.png"))
    assert len(files) == sum(sum(v.values()) for v in summary.values())
    assert all((tmp_path / "one" / f).read_bytes() == (tmp_path / "two" / f).read_bytes()
               for f in files)


def test_a_crop_is_a_square_around_the_box_with_the_edge_replicated_outside():
    pixels = np.zeros((20, 20, 3), np.uint8)
    pixels[:, :10] = 200                       # left half bright
    crop = crop_square(pixels, (0, 0, 10, 4), size=12, context=0.0)
    assert crop.shape == (12, 12, 3)
    # the 10 x 10 square around the 10 x 4 box starts 3 rows above the image: replicated rows
    assert (crop[:, :10] > 150).all()
