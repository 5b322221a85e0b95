"""Classification datasets of the taxonomies: folders and CSV files read, labels mapped to super
columns with the taxonomy's mask, maps_to: null images kept as the OOD set, drops counted,
every bad input named by file and line, and the detector's stable split."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from PIL import Image

import taxdet.supertax as supertax
from taxdet.core.errors import InputNotFoundError
from taxdet.datasets.augment_config import ClassifierAugmentConfig
from taxdet.datasets.classification_data import (
    DROP_UNMAPPED,
    OOD,
    ClassificationDataError,
    load_classification,
)
from taxdet.datasets.classification_torch import ClassificationDataset, EpochDraws, random_crop_box
from taxdet.datasets.images import ImageCheckError, MissingImagesError
from taxdet.datasets.split import SplitConfig, assign_split
from taxdet.supertax import ClassificationSource
from tests.paths import DRIVING


def png(path, value: int = 0, size: int = 8):
    """A ``size`` px PNG whose pixels depend on ``value`` (distinct bytes per value)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((size, size, 3), value, np.uint8)).save(path)
    return path


def folder(root, labels: dict[str, int], start: int = 0):
    """An ImageFolder tree: ``labels`` name -> number of images (distinct pixels)."""
    value = start
    for label, n in labels.items():
        for i in range(n):
            png(root / label / f"{i}.png", value)
            value += 1
    return root


def with_sources(driving, **sources: list[ClassificationSource]) -> supertax.TaxonomySet:
    return supertax.TaxonomySet(driving.super, [
        dataclasses.replace(t, classification=sources.get(t.name, []))
        for t in driving.taxonomies])


def test_folder_images_map_to_columns_with_the_taxonomy_mask_and_dogs_go_to_ood(
        driving, tmp_path):
    a = folder(tmp_path / "a", {"Human": 3, "Dog": 2})
    data = load_classification(with_sources(driving, customer_a=[
        ClassificationSource("folder", str(a))]))
    person = driving.super.column["person"]
    assert [s.column for s in data.samples] == [person] * 3
    assert [s.label for s in data.ood] == ["Dog", "Dog"] and {s.column for s in data.ood} == {OOD}
    assert all((s.label_mask == driving.label_mask("customer_a")).all() for s in data.samples)
    assert [s.image_id for s in data.ood + data.samples] == [1, 2, 3, 4, 5]  # Dog sorts first
    assert all(len(s.content_hash) == 40 for s in data.samples)
    (report,) = data.report.sources
    assert (report.read, report.kept, report.ood, report.dropped) == (5, 3, 2, {})
    assert data.report.per_class == {"customer_a": {"person": 3}, "customer_b": {},
                                     "customer_c": {}}


def test_csv_rows_are_read_relative_to_the_csv_and_concatenated_after_folders(
        driving, tmp_path):
    a = folder(tmp_path / "a", {"Human": 1})
    png(tmp_path / "b" / "img" / "x.png", 50)
    png(tmp_path / "b" / "img" / "y.png", 51)
    csv = tmp_path / "b" / "list.csv"
    csv.write_text("file,label\nimg/x.png,Car\n\nimg/y.png, Pedestrian_child\n")
    data = load_classification(with_sources(
        driving, customer_a=[ClassificationSource("folder", str(a))],
        customer_b=[ClassificationSource("csv", str(csv))]))
    names = driving.super.names
    assert [(s.taxonomy, names[s.column]) for s in data.samples] == [
        ("customer_a", "person"), ("customer_b", "car"), ("customer_b", "pedestrian_child")]
    assert data.samples[1].file == str(tmp_path / "b" / "img" / "x.png")
    assert data.samples[1].source_file == str(csv)


def test_an_unknown_label_folder_is_an_error_naming_it_with_a_hint(driving, tmp_path):
    a = folder(tmp_path / "a", {"human": 1, "Cat": 1})
    with pytest.raises(ClassificationDataError) as err:
        load_classification(with_sources(driving, customer_a=[
            ClassificationSource("folder", str(a))]))
    msg = str(err.value)
    assert f"{a}, label folder 'human': label 'human' is not a label of taxonomy " \
           "'customer_a'; did you mean 'Human'?" in msg
    assert "label folder 'Cat'" in msg and "maps_to: null" in msg


def test_allow_unmapped_drops_and_counts_unknown_labels(driving, tmp_path):
    a = folder(tmp_path / "a", {"Human": 2, "Cat": 3})
    data = load_classification(with_sources(driving, customer_a=[
        ClassificationSource("folder", str(a))]), allow_unmapped=True)
    (report,) = data.report.sources
    assert len(data.samples) == 2 and data.ood == []
    assert (report.read, report.kept, report.dropped) == (5, 2, {DROP_UNMAPPED: 3})


def test_csv_problems_are_named_by_file_and_line(driving, tmp_path):
    csv = tmp_path / "b.csv"
    sources = with_sources(driving, customer_b=[ClassificationSource("csv", str(csv))])
    csv.write_text("path,class\nx.png,Car\n")
    with pytest.raises(ClassificationDataError, match=rf"{csv}:1: expected the header row"):
        load_classification(sources)
    csv.write_text("file,label\nx.png,Car\ny.png\nz.png,Car,extra\n")
    with pytest.raises(ClassificationDataError) as err:
        load_classification(sources)
    assert f"{csv}:3: expected 2 non-empty fields" in str(err.value)
    assert f"{csv}:4: expected 2 non-empty fields" in str(err.value)
    png(tmp_path / "x.png")
    csv.write_text("file,label\nx.png,Kar\n")
    with pytest.raises(ClassificationDataError, match=rf"{csv}:2: label 'Kar' .*did you mean "
                                                      "'Car'"):
        load_classification(sources)


def test_missing_and_broken_images_are_all_listed_with_their_csv_line(driving, tmp_path):
    csv = tmp_path / "b.csv"
    csv.write_text("file,label\ngone.png,Car\nalso_gone.png,Truck\n")
    sources = with_sources(driving, customer_b=[ClassificationSource("csv", str(csv))])
    with pytest.raises(MissingImagesError) as err:
        load_classification(sources)
    assert f"[{csv}:2]" in str(err.value) and f"[{csv}:3]" in str(err.value)
    (tmp_path / "gone.png").write_bytes(b"not an image")
    png(tmp_path / "also_gone.png")
    with pytest.raises(ImageCheckError, match=r"gone.png: not a readable image"):
        load_classification(sources)


def test_a_missing_folder_names_the_yaml_line(tmp_path):
    tax = tmp_path / "tax"
    tax.mkdir()
    (tax / "driving.yaml").write_text((DRIVING / "driving.yaml").read_text())
    (tax / "a.yaml").write_text(
        "kind: taxonomy\nname: customer_a\nsuper_taxonomy: driving\nlabels:\n"
        "  - {name: Human, maps_to: person}\ndata:\n  - classification: nowhere\n")
    with pytest.raises(InputNotFoundError, match=rf"{tax / 'a.yaml'}:7: taxonomy 'customer_a'"
                                                 rf": data classification .*nowhere does not"):
        load_classification(supertax.load(str(tax)))


def test_no_classification_entry_is_an_error(driving):
    with pytest.raises(ClassificationDataError, match="no taxonomy has a classification data"):
        load_classification(with_sources(driving))


def test_other_files_are_skipped_and_counted(driving, tmp_path):
    a = folder(tmp_path / "a", {"Human": 1})
    (a / "Human" / "notes.txt").write_text("x")
    (a / "README").write_text("x")
    data = load_classification(with_sources(driving, customer_a=[
        ClassificationSource("folder", str(a))]))
    assert len(data.samples) == 1 and data.report.sources[0].skipped_files == 2


def test_an_image_keeps_its_split_side_when_other_customers_are_added(driving, tmp_path):
    a = folder(tmp_path / "a", {"Human": 30})
    b = folder(tmp_path / "b", {"Car": 30}, start=100)
    alone = load_classification(with_sources(driving, customer_a=[
        ClassificationSource("folder", str(a))]))
    both = load_classification(with_sources(
        driving, customer_a=[ClassificationSource("folder", str(a))],
        customer_b=[ClassificationSource("folder", str(b))]))
    cfg = SplitConfig(val_fraction=0.3)
    val_alone = {s.file for s in assign_split(alone.samples, cfg)[1]}
    val_both = {s.file for s in assign_split(both.samples, cfg)[1] if s.taxonomy == "customer_a"}
    assert val_alone == val_both and 0 < len(val_alone) < 30


def test_items_hold_the_batch_contract_and_epoch_draws_repeat_exactly(driving, tmp_path):
    a = folder(tmp_path / "a", {"Human": 2})
    data = load_classification(with_sources(driving, customer_a=[
        ClassificationSource("folder", str(a))]))
    ds = ClassificationDataset(data.samples, driving, image_size=16)
    item = ds[0]
    assert item["image"].shape == (3, 16, 16) and item["image"].dtype == torch.float32
    assert int(item["target"]) == driving.super.column["person"]
    assert item["label_mask"].tolist() == driving.label_mask("customer_a").tolist()
    aug = ClassifierAugmentConfig(hflip=0.5, crop_scale=(0.3, 0.6))
    draws = np.array([0, 1, 0])
    first, again = EpochDraws(ds, draws, aug, 0, 3), EpochDraws(ds, draws, aug, 0, 3)
    assert all(torch.equal(first[p]["image"], again[p]["image"]) for p in range(3))
    assert int(first[1]["image_id"]) == data.samples[1].image_id


def test_random_crop_boxes_stay_inside_with_the_area_share_asked_for():
    rng = np.random.default_rng(0)
    for _ in range(200):
        x1, y1, x2, y2 = random_crop_box(rng, 40, 60, (0.25, 0.5))
        assert 0 <= x1 < x2 <= 60 and 0 <= y1 < y2 <= 40
        assert 0.2 <= (x2 - x1) * (y2 - y1) / 2400 <= 0.55   # rounding and the clip to the image
