"""Bbox-aware augmentation (albumentations) to the square model input, and normalisation.

Train: resize so the longest side is ``image_size`` (aspect kept), scale jitter,
pad bottom / right to a square (top-left anchored), random crop back to the
square when jitter made the image larger, horizontal flip, colour jitter.
Eval: the resize and the pad only, deterministic, so ``original = input / scale``.

Ground-truth boxes and ignore regions travel through albumentations together in one
``pascal_voc`` box list whose single label field is each box's row in the
concatenated input; classes, weights and source indices are gathered back by that
row, so they cannot drift out of alignment. A box is removed when less than
``min_visibility`` of its area or fewer than ``min_area`` model pixels remain (same
rule for ignore regions); removals are counted in ``Augmented``.

``AugmentConfig`` lives in ``taxdet.datasets.augment_config`` (no albumentations there, for a fast
``tools/train.py --help``) and is importable from here too.
"""

from __future__ import annotations

from dataclasses import dataclass

import albumentations as A
import cv2
import numpy as np
import torch

from taxdet.datasets.augment_config import AugmentConfig

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
PAD_FILL = tuple(round(255 * m) for m in IMAGENET_MEAN)  # padding normalises to ~0


@dataclass
class Augmented:
    """One transformed image and its aligned targets (model-input pixels)."""

    image: np.ndarray        # [H, W, 3] uint8, H = W = image_size
    boxes: np.ndarray        # [G, 4] float32 x1y1x2y2
    classes: np.ndarray      # [G] int64
    box_weights: np.ndarray  # [G] float32
    ann_index: np.ndarray    # [G] int64: row of each kept box in the input boxes
    ignore: np.ndarray       # [R, 4] float32
    scale: float             # model-input pixels per original pixel (long side)
    dropped_boxes: int       # ground-truth boxes removed by the augmentation
    dropped_ignore: int      # ignore regions removed


def _geometry(cfg: AugmentConfig, train: bool) -> list:
    size = cfg.image_size
    ops: list = [A.LongestMaxSize(max_size=size)]
    if train:
        lo, hi = cfg.scale_jitter
        ops.append(A.RandomScale(scale_limit=(lo - 1.0, hi - 1.0), p=1.0))
    ops.append(A.PadIfNeeded(size, size, position="top_left", border_mode=cv2.BORDER_CONSTANT,
                             fill=PAD_FILL))
    if train:
        ops += [A.RandomCrop(size, size),
                A.HorizontalFlip(p=cfg.hflip_p),
                A.ColorJitter(cfg.brightness, cfg.contrast, cfg.saturation, cfg.hue,
                              p=cfg.color_p)]
    return ops


class DetectionTransform:
    """Callable albumentations pipeline over an image and its boxes; see the module doc."""

    def __init__(self, cfg: AugmentConfig, train: bool, seed: int | None = None) -> None:
        self.cfg = cfg
        self.train = train
        bbox = A.BboxParams(format="pascal_voc", label_fields=["row"], clip=True,
                            filter_invalid_bboxes=True, min_visibility=cfg.min_visibility,
                            min_area=cfg.min_area)
        self.compose = A.Compose(_geometry(cfg, train), bbox_params=bbox,
                                 save_applied_params=True, seed=seed)

    def reseed(self, seed: int) -> None:
        """Restart the random stream (per worker, or for reproducible tests)."""
        self.compose.set_random_seed(seed)

    def __call__(self, image: np.ndarray, boxes: np.ndarray, classes: np.ndarray,
                 box_weights: np.ndarray, ignore: np.ndarray | None = None) -> Augmented:
        """``image`` [H, W, 3] uint8; ``boxes`` [G, 4], ``ignore`` [R, 4] x1y1x2y2 pixels."""
        ignore = np.zeros((0, 4), np.float32) if ignore is None else ignore
        g = len(boxes)
        every = np.concatenate([np.asarray(boxes, np.float64).reshape(-1, 4),
                                np.asarray(ignore, np.float64).reshape(-1, 4)])
        out = self.compose(image=image, bboxes=every, row=np.arange(len(every)))
        rows = np.asarray(out["row"], np.int64)
        kept = np.asarray(out["bboxes"], np.float32).reshape(-1, 4)
        is_gt = rows < g
        gt_rows = rows[is_gt]
        return Augmented(
            image=out["image"], boxes=kept[is_gt], classes=np.asarray(classes, np.int64)[gt_rows],
            box_weights=np.asarray(box_weights, np.float32)[gt_rows], ann_index=gt_rows,
            ignore=kept[~is_gt], scale=_scale(out["applied_transforms"], image.shape),
            dropped_boxes=g - int(is_gt.sum()), dropped_ignore=len(ignore) - int((~is_gt).sum()))


def _scale(applied: list[tuple[str, dict]], shape: tuple[int, ...]) -> float:
    """Long-side resize factor: the image's long side just before padding / original's."""
    resized = next(params["shape"] for name, params in applied if name == "PadIfNeeded")
    return max(resized[:2]) / max(shape[:2])


def train_transform(cfg: AugmentConfig, seed: int | None = None) -> DetectionTransform:
    return DetectionTransform(cfg, train=True, seed=seed)


def eval_transform(cfg: AugmentConfig) -> DetectionTransform:
    return DetectionTransform(cfg, train=False, seed=0)


def imagenet_mean_std() -> tuple[torch.Tensor, torch.Tensor]:
    """(mean [1, 3, 1, 1], std [1, 3, 1, 1]) float32, in 0..255 pixel units."""
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32).view(1, 3, 1, 1) * 255.0
    return mean, std


def normalize(images: torch.Tensor) -> torch.Tensor:
    """[B, 3, H, W] uint8 RGB -> float32 ImageNet-normalised."""
    mean, std = imagenet_mean_std()
    return (images.float() - mean) / std


def denormalize(images: torch.Tensor) -> torch.Tensor:
    """``normalize``'s inverse: [B, 3, H, W] ImageNet-normalised -> float32 RGB 0..255."""
    mean, std = imagenet_mean_std()
    return images.float().cpu() * std + mean
