import dataclasses
import json

import numpy as np
import pytest

import taxdet.supertax as supertax
from benchmarks.ablation import (
    VariantResult,
    markdown_table,
    variant_config,
    write_oracle_taxonomies,
)
from taxdet.detection.model.detector_config import TrainConfig


def _with_full_annotations(taxset, tmp_path):
    """The driving taxonomies pointed at tmp data folders holding annotations_full.json."""
    taxes = []
    for t in taxset.taxonomies:
        folder = tmp_path / t.name
        folder.mkdir()
        (folder / "annotations_full.json").write_text(json.dumps({"images": []}))
        src = supertax.DataSource(str(folder / "annotations.json"), str(folder / "images"))
        taxes.append(dataclasses.replace(t, data=[src]))
    return supertax.TaxonomySet(taxset.super, taxes)


def test_oracle_taxonomies_label_every_class_with_the_same_names_and_weights(taxset, tmp_path):
    oracle = supertax.load([write_oracle_taxonomies(_with_full_annotations(taxset, tmp_path),
                                                    tmp_path / "oracle")])
    assert oracle.masks.all()  # every column labeled, vehicle (not exhaustive) included
    assert [t.name for t in oracle.taxonomies] == [t.name for t in taxset.taxonomies]
    assert ([t.sampling_weight for t in oracle.taxonomies]
            == [t.sampling_weight for t in taxset.taxonomies])
    assert oracle.taxonomy("customer_a").data[0].annotations.endswith("annotations_full.json")


def test_oracle_needs_the_fully_labeled_files(taxset, tmp_path):
    t = taxset.taxonomies[0]
    src = supertax.DataSource(str(tmp_path / "annotations.json"), str(tmp_path))
    bare = supertax.TaxonomySet(taxset.super, [dataclasses.replace(t, data=[src])])
    with pytest.raises(FileNotFoundError, match="annotations_full.json"):
        write_oracle_taxonomies(bare, tmp_path / "oracle")


def test_variants_differ_only_in_what_they_test(tmp_path):
    base = TrainConfig()
    cfgs = {n: variant_config(base, n, tmp_path, tmp_path / "oracle")
            for n in ("naive", "separate", "masked", "oracle")}
    assert cfgs["naive"].run.taxonomy_mask is False and cfgs["masked"].run.taxonomy_mask is True
    assert cfgs["separate"].model.heads == "per-taxonomy" and cfgs["masked"].model.heads == "shared"
    assert cfgs["oracle"].data.taxonomies == [str(tmp_path / "oracle")]
    for c in cfgs.values():  # same seed, steps and model everywhere
        assert ((c.run.seed, c.optim.steps, c.model.name)
                == (base.run.seed, base.optim.steps, base.model.name))
    assert base.run.taxonomy_mask is True  # the base config is not changed


def test_markdown_table_has_a_row_per_class_and_the_mean():
    stats = {"AP": 0.5, "AP50": 0.75, "AR100": 0.625}
    r = VariantResult("masked", stats, {"person": {"AP": 0.25, "AP50": 0.5, "AR100": None}},
                      3_829_208, 3.5, 60.0)
    table = markdown_table([r], ["person", "car"])
    assert "| person | 0.250 / 0.500 / - |" in table
    assert "| car | - / - / - |" in table
    assert "**0.500** / 0.750 / 0.625" in table and "3.83 M" in table
    assert np.isclose(r.images_per_s, 3.5)
