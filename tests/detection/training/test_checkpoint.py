import copy

import pytest
import torch

import supertax
from detection.training import checkpoint


def test_atomic_save_never_leaves_a_broken_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    checkpoint.save_atomic({"step": 1}, path)

    def crash(*args, **kwargs):
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoint.save_atomic({"step": 2}, path)
    monkeypatch.undo()
    assert checkpoint.load(path) == {"step": 1}          # the old checkpoint is intact
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary file left


def test_truncated_checkpoint_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.pt"
    checkpoint.save_atomic({"w": torch.zeros(1000)}, path)
    path.write_bytes(path.read_bytes()[:100])
    with pytest.raises(checkpoint.CheckpointError, match="bad.pt: not a readable checkpoint"):
        checkpoint.load(path)


def test_checkpoint_of_another_taxonomy_is_refused_listing_the_classes(taxset):
    ckpt = {"taxonomy_hash": taxset.hash, "taxonomies": taxset.to_dict()}
    checkpoint.check_taxonomy(ckpt, taxset, "ok.pt")  # same taxonomy: accepted
    d = copy.deepcopy(taxset.to_dict())
    d["super_taxonomy"]["classes"].append({"name": "bicycle"})
    other = supertax.TaxonomySet.from_dict(d)
    with pytest.raises(checkpoint.CheckpointError) as err:
        checkpoint.check_taxonomy({"taxonomy_hash": other.hash, "taxonomies": d}, taxset, "old.pt")
    assert "old.pt" in str(err.value) and "removed ['bicycle']" in str(err.value)


def test_changed_labels_are_named_in_the_refusal(taxset):
    d = copy.deepcopy(taxset.to_dict())
    d["taxonomies"][0]["labels"][0]["maps_to"] = "pedestrian_adult"
    other = supertax.TaxonomySet.from_dict(d)
    assert checkpoint.taxonomy_differences(other, taxset) == [
        "taxonomy 'customer_a' changed its labels or weights"]
