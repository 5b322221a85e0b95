"""torch Dataset over super-dataset samples and the collate that builds training batches.

``collate`` output (the batch every training and prediction bench takes)::

    image        [B, 3, H, W] float32  ImageNet-normalised RGB
    boxes        [B, G, 4] float32     x1y1x2y2, model-input pixels (zero rows = padding)
    classes      [B, G] int64          super-taxonomy columns, PADDING for padding rows
    box_weights  [B, G] float32        0 for padding rows
    ignore       [B, R, 4] float32     crowd / ignore regions (zero rows = padding)
    label_mask   [B, K] bool           True = the sample's taxonomy labels the class
    image_id     [B] int64
    taxonomy     [B] int64             row of TaxonomySet.masks
    scale        [B] float32           model-input pixels per original pixel
    orig_size    [B, 2] int64          (h, w) of the decoded original image

plus ``dropped_boxes`` [B] int64 (boxes the augmentation removed) and any tensor a
``target_fn`` added (stacked). G and R are the batch maxima, at least 1.
"""

from __future__ import annotations

from typing import Callable, Sequence

import cv2
import numpy as np
import torch
from torch.utils.data import Dataset, get_worker_info

from taxdet.core.errors import ConfigError
from taxdet.core.targets import PADDING
from taxdet.datasets.images import ImageCheckError, ImageReadError, check_pixel_limit
from taxdet.datasets.sample import Sample
from taxdet.datasets.transforms import DetectionTransform, normalize

TargetFn = Callable[[dict], "dict | None"]
NOT_COLLATED = ("ann_index",)  # per-item only: row of each kept box in Sample.boxes


def load_image(path: str, image_id: int = -1) -> np.ndarray:
    """[H, W, 3] uint8 RGB, EXIF orientation applied (OpenCV's default for IMREAD_COLOR).
    ``ImageReadError`` for unreadable files and images over
    ``taxdet.datasets.images.MAX_IMAGE_PIXELS``."""
    check_pixel_limit(path, f"image id {image_id}")
    try:
        bgr = cv2.imread(path, cv2.IMREAD_COLOR)
    except cv2.error as exc:
        raise ImageReadError(f"image id {image_id}: cannot read image file {path}: "
                             f"{str(exc).strip().splitlines()[-1]}") from None
    if bgr is None:
        raise ImageReadError(f"image id {image_id}: cannot read image file {path}")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


class DetectionDataset(Dataset):
    """Loads, augments and encodes samples as per-item tensor dicts (see ``collate``).

    ``transform`` is a ``DetectionTransform`` (train or eval). In DataLoader workers its
    random stream is reseeded from the worker's torch seed on first use, so workers do
    not repeat each other and runs are reproducible under ``torch.manual_seed``.
    ``target_fn(item)`` runs per item in the worker (e.g. an anchor labeler); it may add
    keys in place or return a dict of new keys; ``collate`` stacks those tensors.
    """

    def __init__(self, samples: Sequence[Sample], taxset, transform: DetectionTransform,
                 image_size: int | None = None, target_fn: TargetFn | None = None) -> None:
        if image_size is not None and image_size != transform.cfg.image_size:
            raise ConfigError(f"image_size {image_size} != transform's {transform.cfg.image_size}")
        self.samples = list(samples)
        self.taxset = taxset
        self.transform = transform
        self.image_size = transform.cfg.image_size
        self.target_fn = target_fn
        self._worker_seed: int | None = None

    def __len__(self) -> int:
        return len(self.samples)

    def _reseed_in_worker(self) -> None:
        info = get_worker_info()
        if info is not None and info.seed != self._worker_seed:
            self.transform.reseed(info.seed % 2 ** 32)
            self._worker_seed = info.seed

    def __getitem__(self, index: int) -> dict:
        self._reseed_in_worker()
        s = self.samples[index]
        image = load_image(s.file, s.image_id)
        if image.shape[:2] != (s.height, s.width):
            raise ImageCheckError(f"image id {s.image_id} ({s.file}): decoded size "
                                  f"{image.shape[1]}x{image.shape[0]} != recorded "
                                  f"{s.width}x{s.height}")
        if s.taxonomy not in self.taxset.index:
            raise KeyError(f"image id {s.image_id} ({s.file}): taxonomy {s.taxonomy!r} is not in "
                           f"the TaxonomySet ({', '.join(self.taxset.index)})")
        aug = self.transform(image, s.boxes, s.classes, s.box_weights, s.ignore)
        item = {
            "image": torch.from_numpy(np.ascontiguousarray(aug.image.transpose(2, 0, 1))),
            "boxes": torch.from_numpy(aug.boxes), "classes": torch.from_numpy(aug.classes),
            "box_weights": torch.from_numpy(aug.box_weights),
            "ignore": torch.from_numpy(aug.ignore),
            "label_mask": torch.tensor(np.asarray(s.label_mask), dtype=torch.bool),
            "image_id": torch.tensor(s.image_id, dtype=torch.int64),
            "taxonomy": torch.tensor(self.taxset.index[s.taxonomy], dtype=torch.int64),
            "scale": torch.tensor(aug.scale, dtype=torch.float32),
            "orig_size": torch.tensor(image.shape[:2], dtype=torch.int64),
            "dropped_boxes": torch.tensor(aug.dropped_boxes, dtype=torch.int64),
            "ann_index": torch.from_numpy(aug.ann_index),
        }
        if self.target_fn is not None:
            extra = self.target_fn(item)
            if extra is not None:
                item.update(extra)
        return item


def _pad(items: Sequence[dict], key: str, rows: int, fill: float) -> torch.Tensor:
    """Stack per-item [n, ...] tensors into [B, rows, ...], filling missing rows."""
    first = items[0][key]
    out = torch.full((len(items), rows, *first.shape[1:]), fill, dtype=first.dtype)
    for b, it in enumerate(items):
        out[b, :len(it[key])] = it[key]
    return out


def collate(items: Sequence[dict]) -> dict[str, torch.Tensor]:
    """Batch per-item dicts of ``DetectionDataset`` into the dict described in the module doc."""
    if not items:
        raise ValueError("cannot collate an empty batch")
    g = max(1, max(len(it["boxes"]) for it in items))
    r = max(1, max(len(it["ignore"]) for it in items))
    batch = {"image": normalize(torch.stack([it["image"] for it in items])),
             "boxes": _pad(items, "boxes", g, 0.0), "classes": _pad(items, "classes", g, PADDING),
             "box_weights": _pad(items, "box_weights", g, 0.0),
             "ignore": _pad(items, "ignore", r, 0.0)}
    for key in items[0]:
        if key in batch or key in NOT_COLLATED:
            continue
        values = [it[key] for it in items]
        if not all(isinstance(v, torch.Tensor) for v in values):
            raise TypeError(f"collate: item key {key!r} is not a tensor in every item")
        try:
            batch[key] = torch.stack(values)
        except RuntimeError as e:
            raise ValueError(f"collate: cannot stack item key {key!r}: {e}") from None
    return batch
