"""taxdet.detection.linting.crossfit: folds from the split hash, one fold model per held-out fold,
and a tiny end-to-end cross-fit (two folds, one training step each, 128 px)."""

from __future__ import annotations

import pytest

from taxdet.core.errors import ConfigError
from taxdet.datasets import merge
from taxdet.datasets.sample import Sample
from taxdet.datasets.split import SplitConfig, is_val
from taxdet.detection.linting.crossfit import (
    CrossFitConfig,
    assign_folds,
    cross_fit_predictions,
    fold_config,
    fold_of,
)
from tests.factories import make_tiny_taxonomies

pytestmark = pytest.mark.usefixtures("one_thread")

TINY = {"model": {"image_size": 128}, "data": {"workers": 0},
        "optim": {"batch_size": 2, "warmup_steps": 1, "lr": 0.01, "ema_decay": 0.9},
        "run": {"device": "cpu", "log_every": 1}}


def samples(n: int) -> list[Sample]:
    return [Sample(i, f"{i}.png", 8, 8, "t", None, content_hash=f"hash{i}") for i in range(n)]


def test_fold_zero_of_ten_is_the_default_validation_split():
    cfg = SplitConfig()
    many = samples(400)
    assert [fold_of(s, 10, cfg) == 0 for s in many] == [is_val(s, cfg) for s in many]


def test_every_image_lands_in_exactly_one_fold_independently_of_the_others():
    cfg = SplitConfig()
    folds = assign_folds(samples(60), 3, cfg)
    assert sorted(s.image_id for f in folds for s in f) == list(range(60))
    assert all(folds)                                     # 60 images: no fold empty
    fewer = assign_folds(samples(60)[::2], 3, cfg)        # other images leave: no one moves
    kept = [[s.image_id for s in f if s.image_id % 2 == 0] for f in folds]
    assert [[s.image_id for s in f] for f in fewer] == kept


def test_fold_config_trains_on_the_fold_file_without_validation(tmp_path):
    cfg = fold_config(TINY, ["tax"], tmp_path / "f0.json", tmp_path / "fold0",
                      CrossFitConfig(2, str(tmp_path), steps=3, overwrite=True))
    assert cfg.data.super_json == str(tmp_path / "f0.json") and cfg.data.taxonomies == ["tax"]
    assert cfg.split.val_fraction == 0.0 and cfg.optim.steps == 3 and cfg.run.val_every == 3
    assert cfg.run.output == str(tmp_path / "fold0") and cfg.run.overwrite
    assert cfg.model.image_size == 128                    # the base config's own settings stay


def test_cross_fit_needs_two_folds():
    with pytest.raises(ConfigError, match="at least 2 folds"):
        CrossFitConfig(1, "out")


@pytest.mark.slow
def test_tiny_cross_fit_predicts_every_image_with_a_model_that_never_saw_it(tmp_path):
    folder = make_tiny_taxonomies(tmp_path, images_per_customer=4)
    import taxdet.supertax as supertax
    taxset = supertax.load([folder])
    dataset, _ = merge(taxset)
    cfg = CrossFitConfig(2, str(tmp_path / "cf"), steps=1, progress=False)
    preds = cross_fit_predictions(dataset, dataset.samples, TINY, [str(folder)], cfg)
    assert set(preds) == {s.image_id for s in dataset.samples}   # every image, once
    folds = assign_folds(dataset.samples, 2, SplitConfig())
    for f, held in enumerate(folds):
        trained = merge_ids(tmp_path / "cf" / f"fold{f}_train.json", taxset)
        assert trained.isdisjoint(s.image_id for s in held)       # out-of-sample
        assert (tmp_path / "cf" / f"fold{f}" / "last.pt").is_file()


def merge_ids(path, taxset) -> set[int]:
    from taxdet.datasets import SuperDataset
    return {s.image_id for s in SuperDataset.load(path, taxset).samples}
