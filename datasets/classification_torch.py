"""torch Datasets over classification samples: what one training or evaluation batch holds.

A batch (torch's default collate of the items)::

    image       [B, 3, S, S] float32  ImageNet-normalised RGB, S = the model's image size
    target      [B] int64             the super column of the label (OOD samples: -1)
    label_mask  [B, K] bool           True = the sample's taxonomy labels the class
    image_id    [B] int64
    taxonomy    [B] int64             row of ``TaxonomySet.masks`` (-1: none, an OOD folder)

Training items are drawn by position in an epoch's draws (``EpochDraws``): the augmentation of
position p of epoch e is a pure function of ``(seed, e, p)``, so a resumed run, any number of
loader workers and a re-run see the same pixels.
"""

from __future__ import annotations

from typing import Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset

from taxdet.datasets.augment_config import ClassifierAugmentConfig
from taxdet.datasets.classification_data import ClassificationSample
from taxdet.datasets.torch_dataset import load_image
from taxdet.datasets.transforms import IMAGENET_MEAN, IMAGENET_STD
from taxdet.supertax import TaxonomySet

ASPECT = (3 / 4, 4 / 3)  # random resized crop: the aspect ratios drawn (log-uniform)


def random_crop_box(rng: np.random.Generator, height: int, width: int,
                    scale: tuple[float, float]) -> tuple[int, int, int, int]:
    """``(x1, y1, x2, y2)`` of a crop with area share in ``scale`` and aspect in ``ASPECT``,
    inside a ``height`` x ``width`` image (end exclusive)."""
    area = rng.uniform(*scale) * height * width
    aspect = np.exp(rng.uniform(np.log(ASPECT[0]), np.log(ASPECT[1])))
    w = int(round(min(width, max(1.0, np.sqrt(area * aspect)))))
    h = int(round(min(height, max(1.0, np.sqrt(area / aspect)))))
    x1 = int(rng.integers(0, width - w + 1))
    y1 = int(rng.integers(0, height - h + 1))
    return x1, y1, x1 + w, y1 + h


def to_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """[H, W, 3] uint8 RGB -> [3, size, size] float32, resized and ImageNet-normalised."""
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    x = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float() / 255.0
    mean = torch.tensor(IMAGENET_MEAN).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD).view(3, 1, 1)
    return (x - mean) / std


def augment(image: np.ndarray, aug: ClassifierAugmentConfig,
            rng: np.random.Generator) -> np.ndarray:
    """``image`` [H, W, 3] randomly cropped and flipped (a new array)."""
    h, w = image.shape[:2]
    if aug.crop_scale != (1.0, 1.0):
        x1, y1, x2, y2 = random_crop_box(rng, h, w, aug.crop_scale)
        image = image[y1:y2, x1:x2]
    if rng.random() < aug.hflip:
        image = image[:, ::-1]
    return np.ascontiguousarray(image)


class ClassificationDataset(Dataset):
    """Samples as item dicts (module docstring), without augmentation: ``dataset[i]``."""

    def __init__(self, samples: Sequence[ClassificationSample], taxset: TaxonomySet,
                 image_size: int):
        self.samples = list(samples)
        self.taxset = taxset
        self.image_size = image_size

    def __len__(self) -> int:
        return len(self.samples)

    def item(self, index: int, aug: ClassifierAugmentConfig | None = None,
             rng: np.random.Generator | None = None) -> dict:
        s = self.samples[index]
        image = load_image(s.file, s.image_id)
        if aug is not None:
            image = augment(image, aug, rng)
        return {"image": to_tensor(image, self.image_size),
                "target": torch.tensor(s.column, dtype=torch.int64),
                "label_mask": torch.from_numpy(np.asarray(s.label_mask, bool)),
                "image_id": torch.tensor(s.image_id, dtype=torch.int64),
                "taxonomy": torch.tensor(self.taxset.index.get(s.taxonomy, -1), dtype=torch.int64)}

    def __getitem__(self, index: int) -> dict:
        return self.item(index)


class EpochDraws(Dataset):
    """One epoch of training draws: item p is sample ``draws[p]`` augmented with the generator
    ``default_rng([seed, epoch, p])``."""

    def __init__(self, dataset: ClassificationDataset, draws: np.ndarray,
                 aug: ClassifierAugmentConfig, seed: int, epoch: int):
        self.dataset, self.draws, self.aug = dataset, draws, aug
        self.seed, self.epoch = seed, epoch

    def __len__(self) -> int:
        return len(self.draws)

    def __getitem__(self, position: int) -> dict:
        rng = np.random.default_rng([self.seed, self.epoch, position])
        return self.dataset.item(int(self.draws[position]), self.aug, rng)
