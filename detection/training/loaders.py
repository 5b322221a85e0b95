"""Training data: merge the taxonomies' datasets, split them, and build the loaders.

Anchor labeling runs in the data-loader workers by default (one image at a
time, on the CPU) or on the training device for the whole batch
(``data.label_in_workers: false``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import torch
from effdet.anchors import Anchors
from torch.utils.data import DataLoader

import supertax
from datasets import MergeConfig, SuperDataset, merge
from datasets.sampler import TaxonomyWeightedSampler
from datasets.split import assign_split
from datasets.torch_dataset import DetectionDataset, collate
from datasets.transforms import eval_transform, train_transform
from detection.training.distributed import DistInfo
from detection.anchors.labeler import AnchorLabeler, LabelerConfig
from detection.model.build import effdet_config
from supertax.errors import ConfigError


class ItemLabeler:
    """``target_fn`` for ``DetectionDataset``: anchor targets of one image, in the worker."""

    def __init__(self, anchors: Anchors, cfg: LabelerConfig):
        self.labeler = AnchorLabeler(anchors, cfg)

    def __call__(self, item: dict) -> dict:
        t = self.labeler(item["boxes"][None], item["classes"][None], item["box_weights"][None],
                         item["ignore"][None])
        return {"cls_targets": t.cls_targets[0], "box_targets": t.box_targets[0],
                "anchor_box_weights": t.box_weights[0], "num_positives": t.num_positives[0]}


def _seed(*parts) -> int:
    """A 63-bit seed from any parts (stable across processes, unlike ``hash``)."""
    digest = hashlib.blake2b(repr(parts).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") >> 1


def _worker_init(worker_id: int) -> None:
    torch.set_num_threads(1)  # workers share the cores with the training process


@dataclass
class TrainData:
    """The split super-dataset and loaders for it."""

    train: DetectionDataset
    val: DetectionDataset
    sampler: TaxonomyWeightedSampler
    val_gt: dict                  # COCO dict of the val split in super-taxonomy terms
    report: dict                  # the merge report (``MergeReport.to_dict()``)
    batch_size: int
    workers: int
    seed: int

    @property
    def steps_per_epoch(self) -> int:
        return max(1, len(self.sampler) // self.batch_size)

    def train_loader(self, epoch: int) -> DataLoader:
        """The loader of one epoch: same seed and epoch -> same batches, same augmentations."""
        self.sampler.set_epoch(epoch)
        if self.workers == 0:
            self.train.transform.reseed(_seed(self.seed, epoch) % 2 ** 32)
        gen = torch.Generator().manual_seed(_seed(self.seed, epoch, "workers"))
        return DataLoader(self.train, batch_size=self.batch_size, sampler=self.sampler,
                          num_workers=self.workers, collate_fn=collate, drop_last=True,
                          generator=gen, worker_init_fn=_worker_init,
                          persistent_workers=False, pin_memory=torch.cuda.is_available())

    def val_loader(self, rank: int = 0, world_size: int = 1) -> DataLoader:
        subset = torch.utils.data.Subset(self.val, range(rank, len(self.val), world_size))
        return DataLoader(subset, batch_size=self.batch_size, shuffle=False,
                          num_workers=self.workers, collate_fn=collate,
                          generator=torch.Generator().manual_seed(0), worker_init_fn=_worker_init)


def build_data(cfg, taxset: supertax.TaxonomySet, dist: DistInfo) -> TrainData:
    """Merge, split and wrap the datasets of ``taxset`` as ``cfg`` (a TrainConfig) says."""
    superset, report = merge(taxset, MergeConfig(allow_unmapped=cfg.data.allow_unmapped))
    train, val = assign_split(superset.samples, cfg.split)
    if not train:
        raise ConfigError(f"no training images after the split ({len(val)} went to val)")
    aug = cfg.augment
    target_fn = None
    if cfg.data.label_in_workers:
        anchors = Anchors.from_config(effdet_config(cfg.model, taxset.num_classes))
        target_fn = ItemLabeler(anchors, cfg.labeler)
    train_ds = DetectionDataset(train, taxset, train_transform(aug, seed=cfg.run.seed),
                                target_fn=target_fn)
    val_ds = DetectionDataset(val, taxset, eval_transform(aug))
    sampler = TaxonomyWeightedSampler.from_samples(train, taxset, seed=cfg.run.seed,
                                                   rank=dist.rank, world_size=dist.world_size)
    val_gt = SuperDataset(val, taxset).to_coco()
    return TrainData(train_ds, val_ds, sampler, val_gt, report.to_dict(), cfg.optim.batch_size,
                     cfg.data.workers, cfg.run.seed)
