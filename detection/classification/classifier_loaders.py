"""The classifier's data: concatenate the taxonomies' classification datasets, split them
stably, and build the loaders.

The split is the detector's (``taxdet.datasets.split``, keyed by content hash by default), so an
image keeps its side whichever taxonomies are trained together: a task-centric classifier of one
customer and the concatenated one validate on the same images of that customer. Training draws
come from the detector's ``TaxonomyWeightedSampler`` (taxonomies by ``sampling_weight``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from torch.utils.data import DataLoader

import taxdet.supertax as supertax
from taxdet.core.errors import ConfigError
from taxdet.datasets.augment_config import ClassifierAugmentConfig
from taxdet.datasets.classification_data import ClassificationSample, load_classification
from taxdet.datasets.classification_torch import ClassificationDataset, EpochDraws
from taxdet.datasets.sampler import TaxonomyWeightedSampler
from taxdet.datasets.split import assign_split
from taxdet.detection.engine.seeding import worker_init


@dataclass
class ClassifierData:
    """The split classification data (``train``, ``val``), the OOD set and their loaders."""

    train: ClassificationDataset
    val: ClassificationDataset
    ood: ClassificationDataset
    sampler: TaxonomyWeightedSampler
    report: dict                  # ``ClassificationReport.to_dict()``
    augment: ClassifierAugmentConfig
    batch_size: int
    workers: int
    seed: int

    @property
    def steps_per_epoch(self) -> int:
        return max(1, len(self.sampler) // self.batch_size)

    def train_loader(self, epoch: int) -> DataLoader:
        """The batches of one epoch: the same seed and epoch give the same images, augmented
        the same way (``EpochDraws``), with any number of workers."""
        self.sampler.set_epoch(epoch)
        draws = EpochDraws(self.train, self.sampler.epoch_draws(), self.augment, self.seed,
                           epoch)
        return DataLoader(draws, batch_size=self.batch_size, shuffle=False, drop_last=True,
                          num_workers=self.workers, worker_init_fn=worker_init)

    def val_loader(self, rank: int = 0, world_size: int = 1) -> DataLoader:
        return eval_loader(self.val, self.batch_size, self.workers)


def eval_loader(dataset: ClassificationDataset, batch_size: int, workers: int = 0
                ) -> DataLoader:
    """Batches of ``dataset`` in order, not augmented."""
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      worker_init_fn=worker_init)


def warn_untaught_classes(train: list[ClassificationSample], taxset: supertax.TaxonomySet
                          ) -> list[str]:
    """The classes no training image teaches as positive (none of the class or below it)."""
    counts = np.bincount([s.column for s in train], minlength=taxset.num_classes)
    positives = counts @ taxset.ancestors.astype(np.int64)   # [K]: images of j or below j
    return [name for name, n in zip(taxset.names, positives.tolist()) if n == 0]


def build_classifier_data(cfg, taxset: supertax.TaxonomySet) -> ClassifierData:
    """Read, split and wrap the classification data of ``taxset`` as ``cfg`` (a
    ``ClassifierConfig``) says."""
    data = load_classification(taxset, cfg.data.allow_unmapped)
    train, val = assign_split(data.samples, cfg.split)
    if not train:
        raise ConfigError(f"no training images after the split ({len(val)} went to val; "
                          f"{len(data.ood)} OOD images are never trained on)")
    # an epoch draws at least one batch, also from fewer images than a batch
    sampler = TaxonomyWeightedSampler.from_samples(
        train, taxset, num_samples=max(len(train), cfg.optim.batch_size), seed=cfg.run.seed,
        rank=0, world_size=1)
    size = cfg.model.image_size
    return ClassifierData(ClassificationDataset(train, taxset, size),
                          ClassificationDataset(val, taxset, size),
                          ClassificationDataset(data.ood, taxset, size), sampler,
                          data.report.to_dict(), cfg.augment, cfg.optim.batch_size,
                          cfg.data.workers, cfg.run.seed)
