"""taxdet.detection.linting.predictions: which images a run's split.json names, per customer, and
the in-sample warning."""

from __future__ import annotations

import numpy as np
import pytest

from taxdet.core.errors import InputError
from taxdet.datasets.sample import Sample
from taxdet.datasets.split import SplitConfig, write_split
from taxdet.detection.evaluation.run_split import read_split
from taxdet.detection.linting.predictions import in_sample_warning, select_customer, select_split


def sample(taxset, image_id, customer="customer_b", digest="", source=("b.json", -1)) -> Sample:
    return Sample(image_id, f"/data/{image_id}.png", 64, 64, customer, taxset.label_mask(customer),
                  content_hash=digest, source_file=source[0], source_image_id=source[1])


def split_of(tmp_path, train, val):
    write_split(tmp_path / "split.json", train, val, SplitConfig())
    return read_split(tmp_path / "split.json")


def test_split_side_is_matched_by_content_hash_even_with_other_ids(taxset, tmp_path):
    trained = [sample(taxset, 1, digest="aa"), sample(taxset, 2, digest="bb")]
    split = split_of(tmp_path, trained[:1], trained[1:])
    # the same pictures merged again under other super-dataset ids
    now = [sample(taxset, 7, digest="bb"), sample(taxset, 8, digest="aa"),
           sample(taxset, 9, digest="cc")]
    assert [s.image_id for s in select_split(now, split, "val")] == [7]
    assert [s.image_id for s in select_split(now, split, "all")] == [7, 8]


def test_split_side_falls_back_to_the_customers_file_and_image_id(taxset, tmp_path):
    b = str(tmp_path / "b.json")
    split = split_of(tmp_path, [sample(taxset, 1, source=(b, 4))],
                     [sample(taxset, 2, source=(b, 5))])
    now = [sample(taxset, 30, source=(b, 5)), sample(taxset, 31, source=(b, 4))]
    assert [s.image_id for s in select_split(now, split, "val")] == [30]


def test_a_split_naming_none_of_the_images_is_an_error_naming_the_file(taxset, tmp_path):
    split = split_of(tmp_path, [sample(taxset, 1, digest="aa")], [sample(taxset, 2, digest="bb")])
    with pytest.raises(InputError, match="split.json: none of the 1 val images"):
        select_split([sample(taxset, 3, digest="zz")], split, "val")


def test_select_customer_keeps_its_images_and_names_unknown_ones(taxset):
    samples = [sample(taxset, 1, "customer_a"), sample(taxset, 2, "customer_c")]
    assert [s.image_id for s in select_customer(samples, taxset, "customer_c")] == [2]
    assert select_customer(samples, taxset, None) == samples
    with pytest.raises(InputError, match="customer_x.*known: customer_a"):
        select_customer(samples, taxset, "customer_x")


def test_in_sample_warning_counts_the_images_the_checkpoint_trained_on(taxset, tmp_path):
    ckpt = tmp_path / "last.pt"
    linted = [sample(taxset, i, digest=d) for i, d in ((1, "aa"), (2, "bb"), (3, "cc"))]
    assert "cannot tell which images it trained on" in in_sample_warning(ckpt, linted)
    split_of(tmp_path, linted[:2], linted[2:])
    text = in_sample_warning(ckpt, linted)
    assert text.startswith("2 of 3 images were in the training split") and "--cross-fit" in text
    assert in_sample_warning(ckpt, linted[2:]) == ""                      # only val images
    assert np.array_equal(linted[0].label_mask, taxset.label_mask("customer_b"))
