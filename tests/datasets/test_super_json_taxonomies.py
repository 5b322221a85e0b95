"""A prepared super.json is read only with the taxonomies it was merged with; a mismatch names
the taxonomy (and hashes) that differ. The sampling weight alone may change."""

from __future__ import annotations

import dataclasses
import json

import pytest

from taxdet.datasets import MergeConfig, SuperDataset, merge
from taxdet.datasets.merge_hashes import TaxonomyMismatchError, merge_hashes
from taxdet.supertax import Label, TaxonomySet


def ann(image_id, category_id, bbox) -> dict:
    return {"image_id": image_id, "category_id": category_id, "bbox": bbox}


@pytest.fixture
def written(make_coco, driving_with_data, tmp_path):
    a = make_coco("a", categories=["Human"], images=[{"id": 3, "width": 64, "height": 48}],
                  annotations=[ann(3, 1, [1, 2, 10, 20])])
    b = make_coco("b", categories=["Car"], images=[{"id": 1, "width": 50, "height": 40}],
                  annotations=[ann(1, 1, [5, 5, 10, 10])])
    taxset = driving_with_data(customer_a=[a], customer_b=[b])
    path = tmp_path / "super.json"
    merge(taxset, MergeConfig())[0].write(path)
    return path, taxset


def changed(taxset: TaxonomySet, name: str, **fields) -> TaxonomySet:
    return TaxonomySet(taxset.super, [dataclasses.replace(t, **fields) if t.name == name else t
                                      for t in taxset.taxonomies])


def test_the_file_stores_a_hash_per_taxonomy_and_loads_with_the_same_taxonomies(written):
    path, taxset = written
    info = json.loads(path.read_text())["info"]
    assert info["taxonomy_hashes"] == merge_hashes(taxset)["taxonomy_hashes"]
    assert set(info["taxonomy_hashes"]) == {"customer_a", "customer_b", "customer_c"}
    assert len(SuperDataset.load(path, taxset)) == 2


def test_changed_labels_of_one_taxonomy_are_refused_naming_it_and_both_hashes(written):
    path, taxset = written
    b = taxset.taxonomy("customer_b")
    other = changed(taxset, "customer_b", labels=[*b.labels, Label("Bus", "vehicle", 1.0)])
    old = merge_hashes(taxset)["taxonomy_hashes"]["customer_b"]
    new = merge_hashes(other)["taxonomy_hashes"]["customer_b"]
    with pytest.raises(TaxonomyMismatchError) as err:
        SuperDataset.load(path, other)
    msg = str(err.value)
    assert msg.startswith(f"{path}: merged with other taxonomies")
    assert f"taxonomy 'customer_b': hash {old} in the file, {new} now" in msg
    assert "customer_a" not in msg                          # only what differs is named
    assert "tools/merge_datasets.py" in msg                  # and how to mend it


def test_a_taxonomy_added_or_removed_since_the_merge_is_named(written):
    path, taxset = written
    added = TaxonomySet(taxset.super, [*taxset.taxonomies, dataclasses.replace(
        taxset.taxonomy("customer_c"), name="customer_d")])
    with pytest.raises(TaxonomyMismatchError, match="taxonomy 'customer_d' .*is loaded but not "
                                                    "in the file"):
        SuperDataset.load(path, added)
    removed = TaxonomySet(taxset.super, taxset.taxonomies[:2])
    with pytest.raises(TaxonomyMismatchError, match="taxonomy 'customer_c' is in the file but "
                                                    "not among the loaded taxonomies"):
        SuperDataset.load(path, removed)


def test_a_new_sampling_weight_alone_needs_no_new_merge(written):
    path, taxset = written
    reweighted = changed(taxset, "customer_a", sampling_weight=7.0)
    assert reweighted.hash != taxset.hash
    assert len(SuperDataset.load(path, reweighted)) == 2


def test_a_file_with_only_the_set_hash_is_compared_by_it(written):
    path, taxset = written
    data = json.loads(path.read_text())
    for key in ("taxonomy_hashes", "super_taxonomy_hash"):
        del data["info"][key]                               # as older versions wrote it
    path.write_text(json.dumps(data))
    assert len(SuperDataset.load(path, taxset)) == 2
    other = changed(taxset, "customer_a", sampling_weight=7.0)
    with pytest.raises(TaxonomyMismatchError, match=f"merged under taxonomy hash {taxset.hash}, "
                                                    f"the loaded taxonomies hash to {other.hash}"):
        SuperDataset.load(path, other)
