"""Training data: merge the taxonomies' datasets (or read a prepared ``super.json``), split
them, and build the loaders.

Where the super-dataset comes from (``super_dataset``):

* ``data.super_json`` set: every process reads that file (checked against the taxonomies by
  hash), and one decodes each of its images once, as the merge does (``check_prepared``): a
  truncated, unreadable, missing or resized image is an error naming it, before training;
* else, one process: the merge runs in memory, as ``tools/merge_datasets.py`` would;
* else (torchrun): rank 0 merges and writes ``<run.output>/super.json``, the other ranks wait
  and read it (the merge, with its image checks, runs once, not once per rank).

Anchor labeling runs in the data-loader workers by default (one image at a
time, on the CPU) or on the training device for the whole batch
(``data.label_in_workers: false``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from effdet.anchors import Anchors
from torch.utils.data import DataLoader

import taxdet.supertax as supertax
from taxdet.core.errors import ConfigError
from taxdet.datasets import MergeConfig, SuperDataset, merge
from taxdet.datasets.images import ImageRef, check_images
from taxdet.datasets.sampler import TaxonomyWeightedSampler
from taxdet.datasets.split import assign_split
from taxdet.datasets.torch_dataset import DetectionDataset, collate
from taxdet.datasets.transforms import eval_transform, train_transform
from taxdet.detection.anchors.labeler import AnchorLabeler, LabelerConfig
from taxdet.detection.engine.distributed import DistInfo, in_group, run_on_rank0
from taxdet.detection.engine.seeding import worker_init
from taxdet.detection.model.build import effdet_config

logger = logging.getLogger(__name__)


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


@dataclass
class TrainData:
    """The split super-dataset and loaders for it."""

    train: DetectionDataset
    val: DetectionDataset
    sampler: TaxonomyWeightedSampler
    taxset: supertax.TaxonomySet
    report: dict                  # the merge report (``MergeReport.to_dict()``)
    batch_size: int
    workers: int
    seed: int

    @cached_property
    def val_gt(self) -> dict:
        """COCO dict of the val split in super-taxonomy terms (built when first validated)."""
        return SuperDataset(self.val.samples, self.taxset).to_coco()

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
                          generator=gen, worker_init_fn=worker_init,
                          persistent_workers=False, pin_memory=torch.cuda.is_available())

    def val_loader(self, rank: int = 0, world_size: int = 1) -> DataLoader:
        subset = torch.utils.data.Subset(self.val, range(rank, len(self.val), world_size))
        return DataLoader(subset, batch_size=self.batch_size, shuffle=False,
                          num_workers=self.workers, collate_fn=collate,
                          generator=torch.Generator().manual_seed(0), worker_init_fn=worker_init)


MERGED_FILE = "super.json"  # rank 0's merge in the run folder of a torchrun run


def prepared_report(ds: SuperDataset, path: str) -> dict:
    """What ``merge_report.json`` holds for a run on a prepared ``super.json``: the file, and
    per taxonomy its images and boxes per class."""
    taxset, k = ds.taxset, ds.taxset.num_classes
    rows = np.array([taxset.index[s.taxonomy] for s in ds.samples], np.int64)      # [N]
    images = np.bincount(rows, minlength=len(taxset.taxonomies))                     # [T]
    boxes = np.bincount(rows.repeat([len(s.classes) for s in ds.samples]) * k
                        + box_classes(ds.samples), minlength=len(images) * k).reshape(-1, k)
    return {"prepared": str(path), "images": len(ds),
            "taxonomies": {t.name: {"images": int(images[i]), "boxes_per_class": {
                c: int(n) for c, n in zip(taxset.names, boxes[i].tolist()) if n}}
                for i, t in enumerate(taxset.taxonomies) if images[i]}}


def box_classes(samples: list) -> np.ndarray:
    """[P] int64: the column of every box of ``samples``, in order."""
    return np.concatenate([s.classes for s in samples] + [np.zeros(0, np.int64)])


def check_prepared(ds: SuperDataset, path: str) -> None:
    """Decode every image of the prepared ``path`` once (``check_images``, as the merge does):
    ``ImageCheckError`` naming each truncated, unreadable or resized file, else no
    half-decoded image would be trained on silently."""
    check_images([ImageRef(s.file, s.width, s.height, f"{path}, image id {s.image_id}")
                  for s in ds.samples])


def super_dataset(cfg, taxset: supertax.TaxonomySet, dist: DistInfo,
                  start_folder: Callable[[], None] = lambda: None) -> tuple[SuperDataset, dict]:
    """The super-dataset and its report (module docstring: from ``data.super_json``, an
    in-memory merge, or rank 0's merge). ``start_folder`` prepares the run folder before rank 0
    writes its merge there."""
    if cfg.data.super_json:
        ds = SuperDataset.load(cfg.data.super_json, taxset)
        run_on_rank0(lambda: check_prepared(ds, cfg.data.super_json), dist)
        return ds, prepared_report(ds, cfg.data.super_json)
    merge_cfg = MergeConfig(allow_unmapped=cfg.data.allow_unmapped)
    if not in_group(dist):  # one process (or a rank's share computed without a group)
        ds, report = merge(taxset, merge_cfg)
        return ds, report.to_dict()
    path = Path(cfg.run.output) / MERGED_FILE

    def merge_and_write() -> tuple[SuperDataset, dict]:
        ds, report = merge(taxset, merge_cfg)
        start_folder()
        ds.write(path)
        return ds, report.to_dict()

    merged = run_on_rank0(merge_and_write, dist)
    return merged if merged is not None else (SuperDataset.load(path, taxset), {})


def warn_empty_classes(train: list, taxset: supertax.TaxonomySet) -> list[str]:
    """Log (a warning) and return the classes no training box teaches as positive: no box of
    the class or of a class below it in the tree."""
    counts = np.bincount(box_classes(train), minlength=taxset.num_classes)
    positives = counts @ taxset.ancestors.astype(np.int64)   # [K]: boxes of j or below j
    empty = [name for name, n in zip(taxset.names, positives.tolist()) if n == 0]
    if empty:
        logger.warning(f"no box in the training split ({len(train)} images) teaches class(es) "
                       f"{', '.join(map(repr, empty))} (none of the class or below it): their "
                       "columns learn only to say no; add data that labels them, or check the "
                       "split (split.json in the run folder)")
    return empty


def build_data(cfg, taxset: supertax.TaxonomySet, dist: DistInfo,
               start_folder: Callable[[], None] = lambda: None) -> TrainData:
    """Merge (or read), split and wrap the datasets of ``taxset`` as ``cfg`` (a TrainConfig)
    says."""
    superset, report = super_dataset(cfg, taxset, dist, start_folder)
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
    if len(sampler) < cfg.optim.batch_size:   # drop_last: an epoch would have no batch at all
        raise ConfigError(f"the training split has {len(train)} images ({len(sampler)} per "
                          f"process), fewer than one batch (optim.batch_size "
                          f"{cfg.optim.batch_size}): lower --batch-size, lower "
                          f"--split.val_fraction or add images")
    return TrainData(train_ds, val_ds, sampler, taxset, report, cfg.optim.batch_size,
                     cfg.data.workers, cfg.run.seed)
