"""A DataLoader sampler that draws taxonomies by their ``sampling_weight``.

Definition (``balance="taxonomy"``, the default). With ``w_t`` the sampling weight of
taxonomy ``t``, ``n_t`` its number of samples and ``W`` the sum of ``w_t`` over the
taxonomies present, each draw picks

    taxonomy t with probability  w_t / W,   then one of its samples uniformly,

so sample ``i`` of taxonomy ``t`` has probability ``p_i = w_t / (W * n_t)``. A small
customer gets as many draws as a large one of equal weight (it is oversampled);
the weight tilts the shares further.

With ``balance="image"`` the weight multiplies each sample instead:
``p_i = w_t / sum_j w_t(j)``; taxonomy ``t`` then gets ``w_t * n_t / sum_s w_s * n_s`` of
the draws (equal weights = uniform over images).

An epoch is ``num_samples`` draws with replacement from a generator seeded by
``(seed, epoch)``, padded up to a multiple of ``world_size``; rank ``r`` takes draws
``r, r + world_size, ...``. Shares of different ranks are disjoint positions of the
same epoch sequence and together cover it. Call ``set_epoch`` before each epoch.
"""

from __future__ import annotations

from typing import Iterator, Literal, Mapping, Sequence

import numpy as np
import torch.distributed as dist
from torch.utils.data import Sampler

from taxdet.core.errors import ConfigError
from taxdet.datasets.sample import Sample

Balance = Literal["taxonomy", "image"]


def sample_probabilities(taxonomy_of_each_sample: Sequence[str], weights: Mapping[str, float],
                         balance: Balance = "taxonomy") -> np.ndarray:
    """[N] float64 draw probability of each sample (see the module docstring)."""
    names = np.asarray(taxonomy_of_each_sample, dtype=object)
    if len(names) == 0:
        raise ConfigError("no samples to draw from")
    unknown = sorted(set(names) - set(weights))
    if unknown:
        raise KeyError(f"no sampling weight for taxonomies: {', '.join(map(str, unknown))}")
    bad = {t: w for t, w in weights.items() if not (np.isfinite(w) and w >= 0)}
    if bad:
        raise ConfigError(f"sampling weights must be finite and >= 0: {bad}")
    tax, inverse, counts = np.unique(names, return_inverse=True, return_counts=True)
    w_tax = np.array([float(weights[t]) for t in tax])
    if balance == "taxonomy":
        per_sample = (w_tax / counts)[inverse]
    elif balance == "image":
        per_sample = w_tax[inverse]
    else:
        raise ConfigError(f"balance must be 'taxonomy' or 'image', got {balance!r}")
    total = per_sample.sum()
    if total <= 0:
        raise ConfigError("all sampling weights of the present taxonomies are 0")
    return per_sample / total


def _distributed_rank_world(rank: int | None, world_size: int | None) -> tuple[int, int]:
    """Explicit values win; otherwise torch.distributed's when initialised, else (0, 1)."""
    initialised = dist.is_available() and dist.is_initialized()
    if world_size is None:
        world_size = dist.get_world_size() if initialised else 1
    if rank is None:
        rank = dist.get_rank() if initialised else 0
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} not in [0, {world_size})")
    return rank, world_size


class TaxonomyWeightedSampler(Sampler[int]):
    """Weighted draws with replacement, deterministic per ``(seed, epoch)``, sharded by rank.

    ``taxonomy_of_each_sample``: [N] taxonomy names (dataset order);
    ``weights_by_taxonomy``: name -> sampling weight; ``num_samples``: draws per epoch
    over all ranks (default N). ``rank`` / ``world_size`` default to torch.distributed's.
    """

    def __init__(self, taxonomy_of_each_sample: Sequence[str],
                 weights_by_taxonomy: Mapping[str, float], num_samples: int | None = None,
                 seed: int = 0, rank: int | None = None, world_size: int | None = None,
                 balance: Balance = "taxonomy") -> None:
        self.probabilities = sample_probabilities(taxonomy_of_each_sample, weights_by_taxonomy,
                                                  balance)
        self.num_samples = len(self.probabilities) if num_samples is None else int(num_samples)
        if self.num_samples <= 0:
            raise ConfigError(f"num_samples must be positive, got {num_samples}")
        self.seed = int(seed)
        self.rank, self.world_size = _distributed_rank_world(rank, world_size)
        self.epoch = 0

    @classmethod
    def from_samples(cls, samples: Sequence[Sample], taxset, **kwargs) -> TaxonomyWeightedSampler:
        """Weights from ``taxset`` (a ``supertax.TaxonomySet``) for the samples' taxonomies."""
        names = [s.taxonomy for s in samples]
        weights = {t: taxset.taxonomy(t).sampling_weight for t in set(names)}
        return cls(names, weights, **kwargs)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    @property
    def total_size(self) -> int:
        """Draws per epoch over all ranks: ``num_samples`` rounded up to a multiple of ranks."""
        return -(-self.num_samples // self.world_size) * self.world_size

    def epoch_draws(self) -> np.ndarray:
        """[total_size] int64 sample indices of the whole epoch (all ranks)."""
        rng = np.random.default_rng([self.seed, self.epoch])
        return rng.choice(len(self.probabilities), size=self.total_size, p=self.probabilities)

    def __iter__(self) -> Iterator[int]:
        share = self.epoch_draws()[self.rank::self.world_size]
        return iter(share.tolist())

    def __len__(self) -> int:
        return self.total_size // self.world_size
