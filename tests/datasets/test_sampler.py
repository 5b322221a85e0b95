"""TaxonomyWeightedSampler: weights, determinism, rank shards, DataLoader use."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import taxdet.datasets.sampler as sampler_mod
from taxdet.datasets.sampler import TaxonomyWeightedSampler, sample_probabilities
from tests.paths import DRIVING

# 100 images of a, 300 of b, 50 of c (the small customer, weight 1.5)
NAMES = ["a"] * 100 + ["b"] * 300 + ["c"] * 50
WEIGHTS = {"a": 1.0, "b": 1.0, "c": 1.5}


def taxonomy_shares(sampler: TaxonomyWeightedSampler) -> dict[str, float]:
    draws = list(sampler)
    counts = Counter(NAMES[i] for i in draws)
    return {t: counts[t] / len(draws) for t in WEIGHTS}


def test_taxonomy_draw_frequencies_follow_sampling_weights():
    # shares w_t / sum w: a 1/3.5 = .2857, b .2857, c 1.5/3.5 = .4286 whatever the sizes;
    # 20000 draws: sd <= sqrt(.25 / 20000) = .0035, tolerance .015 = 4 sd
    shares = taxonomy_shares(TaxonomyWeightedSampler(NAMES, WEIGHTS, num_samples=20000, seed=1))
    for t, expected in {"a": 1 / 3.5, "b": 1 / 3.5, "c": 1.5 / 3.5}.items():
        assert abs(shares[t] - expected) < 0.015, (t, shares[t], expected)


def test_image_balance_multiplies_each_sample_by_its_weight():
    # shares w_t n_t / sum: a 100, b 300, c 75 of 475 -> .2105, .6316, .1579
    s = TaxonomyWeightedSampler(NAMES, WEIGHTS, num_samples=20000, seed=2, balance="image")
    shares = taxonomy_shares(s)
    for t, expected in {"a": 100 / 475, "b": 300 / 475, "c": 75 / 475}.items():
        assert abs(shares[t] - expected) < 0.015, (t, shares[t], expected)


def test_samples_within_a_taxonomy_are_drawn_uniformly():
    p = sample_probabilities(NAMES, WEIGHTS)
    np.testing.assert_allclose(p[400:], 1.5 / 3.5 / 50)   # each of c's 50 images
    np.testing.assert_allclose(p[100:400], 1 / 3.5 / 300)
    assert p.sum() == pytest.approx(1.0)
    draws = np.array(list(TaxonomyWeightedSampler(NAMES, WEIGHTS, num_samples=30000, seed=3)))
    per_image = np.bincount(draws[draws >= 400] - 400, minlength=50)
    # ~12857 draws of c over 50 images: 257 each, sd 16; every image within 6 sd
    assert per_image.min() > 257 - 96 and per_image.max() < 257 + 96


def test_zero_weight_taxonomy_is_never_drawn():
    draws = list(TaxonomyWeightedSampler(NAMES, {"a": 1, "b": 0, "c": 1}, num_samples=5000))
    assert not any(NAMES[i] == "b" for i in draws)


def test_same_seed_and_epoch_repeat_other_epochs_differ():
    a = TaxonomyWeightedSampler(NAMES, WEIGHTS, seed=7)
    b = TaxonomyWeightedSampler(NAMES, WEIGHTS, seed=7)
    assert list(a) == list(b)
    first = list(a)
    a.set_epoch(1)
    assert list(a) != first
    b.set_epoch(1)
    assert list(a) == list(b)
    assert list(TaxonomyWeightedSampler(NAMES, WEIGHTS, seed=8)) != first


def test_ranks_get_disjoint_shares_that_cover_the_epoch():
    world = 3
    # 100 draws padded to 102 = 34 per rank
    shards = [TaxonomyWeightedSampler(NAMES, WEIGHTS, num_samples=100, seed=5, rank=r,
                                      world_size=world) for r in range(world)]
    for s in shards:
        s.set_epoch(4)
    epoch = shards[0].epoch_draws()
    assert len(epoch) == 102 and all(len(s) == 34 == len(list(s)) for s in shards)
    interleaved = np.empty(102, np.int64)
    for r, s in enumerate(shards):
        interleaved[r::world] = list(s)        # rank r owns positions r, r+3, ...
    np.testing.assert_array_equal(interleaved, epoch)


def test_rank_and_world_come_from_torch_distributed_when_initialised(monkeypatch):
    monkeypatch.setattr(sampler_mod.dist, "is_available", lambda: True)
    monkeypatch.setattr(sampler_mod.dist, "is_initialized", lambda: True)
    monkeypatch.setattr(sampler_mod.dist, "get_rank", lambda: 2)
    monkeypatch.setattr(sampler_mod.dist, "get_world_size", lambda: 4)
    s = TaxonomyWeightedSampler(NAMES, WEIGHTS, num_samples=10)
    assert (s.rank, s.world_size, len(s)) == (2, 4, 3)   # 10 padded to 12 = 3 per rank
    assert list(s) == s.epoch_draws()[2::4].tolist()


def test_sampler_drives_a_dataloader():
    data = torch.arange(len(NAMES))
    sampler = TaxonomyWeightedSampler(NAMES, WEIGHTS, num_samples=64, seed=0)
    batches = list(DataLoader(data, batch_size=16, sampler=sampler))
    assert [len(b) for b in batches] == [16] * 4
    assert torch.cat(batches).tolist() == list(sampler)


def test_unknown_taxonomy_and_bad_weight_are_rejected():
    with pytest.raises(KeyError, match="no sampling weight for taxonomies: c"):
        TaxonomyWeightedSampler(NAMES, {"a": 1, "b": 1})
    with pytest.raises(ValueError, match="finite and >= 0"):
        TaxonomyWeightedSampler(NAMES, {"a": 1, "b": -1, "c": 1})
    with pytest.raises(ValueError, match="rank 3 not in"):
        TaxonomyWeightedSampler(NAMES, WEIGHTS, rank=3, world_size=2)


def test_from_samples_reads_weights_from_the_taxonomies():
    import taxdet.supertax as supertax
    from taxdet.datasets.sample import Sample
    ts = supertax.load([DRIVING])   # customer_c has sampling_weight 1.5
    samples = [Sample(i, f"{i}.jpg", 8, 8, t, np.ones(7, bool))
               for i, t in enumerate(["customer_a"] * 3 + ["customer_c"])]
    s = TaxonomyWeightedSampler.from_samples(samples, ts)
    # a: 1 / 2.5 over 3 images = .1333 each; c: 1.5 / 2.5 = .6
    np.testing.assert_allclose(s.probabilities, [0.4 / 3] * 3 + [0.6])
