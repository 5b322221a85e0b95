"""Predict with a training checkpoint: rebuild the model, load its (EMA) weights, run images.

    predictor, taxset, cfg = load_predictor("runs/exp/best.pt")   # hierarchy_decoding=None: auto
    results = predict_images(predictor, "data/demo/test/annotations.json", "data/demo/test/images",
                             taxset=taxset, image_size=cfg.model.image_size)

``results`` is a COCO results list: the ground truth's image ids,
``category_id`` = super-taxonomy column + 1, boxes in original image pixels.

Hierarchy-consistent decoding (``taxdet.detection.prediction.hierarchy_decoding``) scores each parent column
as the max over its descendants before NMS; ``hierarchy_decoding`` None (auto) turns it on
for a super-taxonomy with any parent. ``set_hierarchy_decoding`` switches a loaded predictor.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from taxdet.core.errors import ConfigError, InputError
from taxdet.datasets.images import image_files, read_ground_truth
from taxdet.datasets.sample import Sample
from taxdet.datasets.torch_dataset import DetectionDataset, collate
from taxdet.datasets.transforms import AugmentConfig, eval_transform
from taxdet.detection.model.build import create_model
from taxdet.detection.model.detector_wrappers import PredictBench
from taxdet.detection.prediction.hierarchy_decoding import set_hierarchy_decoding
from taxdet.detection.training import checkpoint
from taxdet.detection.training.checkpoint import CheckpointError
from taxdet.detection.training.distributed import DistInfo, pick_device
from taxdet.detection.training.steps import predict
from taxdet.detection.training.train_config import TrainConfig
from taxdet.supertax import TaxonomySet

REQUIRED_KEYS = ("model", "config", "taxonomies", "taxonomy_hash")
EMA_PREFIX = "module."  # timm ModelEmaV3 keeps the averaged copy as ``self.module``


def ema_model_state(ema_state: dict, source: str) -> dict:
    """The model's own keys from a ``ModelEmaV3.state_dict()`` (``module.<key>`` -> ``<key>``)."""
    if not isinstance(ema_state, dict):
        raise CheckpointError(f"{source}: 'ema' is a {type(ema_state).__name__}, not a state dict")
    foreign = [k for k in ema_state if not (isinstance(k, str) and k.startswith(EMA_PREFIX))]
    if foreign:
        raise CheckpointError(f"{source}: 'ema' weights are not a ModelEmaV3 state dict "
                              f"(keys without {EMA_PREFIX!r}, e.g. {foreign[:3]})")
    return {k[len(EMA_PREFIX):]: v for k, v in ema_state.items()}


def _weights(ckpt: dict, use_ema: bool, source: str) -> tuple[dict, str]:
    """(state dict, "ema" | "model"): the EMA weights when asked for and present."""
    if use_ema and ckpt.get("ema") is not None:
        return ema_model_state(ckpt["ema"], source), "ema"
    return ckpt["model"], "model"


def _checkpoint_taxonomies(ckpt: dict, source: str | Path) -> TaxonomySet:
    """The checkpoint's own ``taxonomies``; a ``CheckpointError`` naming the file if unreadable."""
    try:
        return TaxonomySet.from_dict(ckpt["taxonomies"])
    except (InputError, KeyError, TypeError, ValueError, AttributeError) as exc:
        raise CheckpointError(f"{source}: its 'taxonomies' cannot be read "
                              f"({type(exc).__name__}: {exc})") from None


def load_predictor(ckpt_path: str | Path, *, use_ema: bool = True,
                   device: str | torch.device = "cpu", taxset: TaxonomySet | None = None,
                   hierarchy_decoding: bool | None = None
                   ) -> tuple[PredictBench, TaxonomySet, TrainConfig]:
    """Rebuild the checkpoint's model: ``(PredictBench in eval mode, taxonomies, config)``.

    Taxonomies come from the checkpoint unless ``taxset`` is given, which must then hash
    like the checkpoint's (``CheckpointError`` listing the differences otherwise).
    ``use_ema``: the EMA weights when the checkpoint has them, else the raw model's.
    ``hierarchy_decoding``: parents scored as the max over their descendants before NMS;
    None (auto) = on iff the super-taxonomy has a parent (``predictor.hierarchy`` tells).
    """
    # read without running code from the file, its digest checked (detection.training.checkpoint)
    ckpt = checkpoint.load(ckpt_path, required=REQUIRED_KEYS)
    if taxset is None:
        taxset = _checkpoint_taxonomies(ckpt, ckpt_path)
    checkpoint.check_taxonomy(ckpt, taxset, ckpt_path)  # also catches a tampered 'taxonomies'
    try:
        cfg = TrainConfig.from_dict(ckpt["config"], where=f"{ckpt_path}: config")
    except (TypeError, ValueError) as exc:
        raise CheckpointError(str(exc)) from None
    # the weights come from the checkpoint: a backbone file of the training machine is not needed
    model_cfg = dataclasses.replace(cfg.model, pretrained_backbone=None)
    model = create_model(model_cfg, taxset.num_classes, head_masks=np.asarray(taxset.masks))
    state, which = _weights(ckpt, use_ema, str(ckpt_path))
    misfit = checkpoint.weights_misfit(model, state)
    if misfit:
        raise CheckpointError(f"{ckpt_path}: '{which}' weights do not fit {cfg.model.name} at "
                              f"{cfg.model.image_size}px with {taxset.num_classes} classes: "
                              f"{'; '.join(misfit)}")
    model.load_state_dict(state, strict=True)
    try:
        device = pick_device(str(device), DistInfo())
    except RuntimeError as exc:  # CUDA asked for but absent
        raise ConfigError(str(exc)) from None
    predictor = PredictBench(model).to(device).eval()
    set_hierarchy_decoding(predictor, taxset, hierarchy_decoding)
    return predictor, taxset, cfg


def image_samples(images: list[dict], files: list[str], taxset: TaxonomySet) -> list[Sample]:
    """Box-less ``Sample``s for ``DetectionDataset``. The taxonomy only fills the batch's
    ``taxonomy``/``label_mask`` (prediction uses neither): the image's own when it names a
    loaded one, else the first."""
    fallback = taxset.taxonomies[0].name
    out = []
    for img, file in zip(images, files):
        tax = img.get("taxonomy") if img.get("taxonomy") in taxset.index else fallback
        out.append(Sample(int(img["id"]), file, int(img["width"]), int(img["height"]), tax,
                          taxset.label_mask(tax)))
    return out


def ground_truth_loader(gt_coco: dict | str | Path, images_dir: str | Path | None = None, *,
                        taxset: TaxonomySet, image_size: int, batch_size: int = 8,
                        workers: int = 0) -> DataLoader | None:
    """A loader of the ground truth's images, resized like validation; None if it has none.

    The image records are checked and their files resolved by ``taxdet.datasets.images``
    (``read_ground_truth``, ``image_files``: ``images_dir``, default the ground-truth file's
    folder)."""
    raw, base, source = read_ground_truth(gt_coco, images_dir)
    images = raw["images"]
    if not images:
        return None
    samples = image_samples(images, image_files(images, base, source), taxset)
    transform = eval_transform(AugmentConfig(image_size=image_size))
    dataset = DetectionDataset(samples, taxset, transform)
    return DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                      collate_fn=collate)


def predict_images(predictor: PredictBench, gt_coco: dict | str | Path,
                   images_dir: str | Path | None = None, *, taxset: TaxonomySet, image_size: int,
                   batch_size: int = 8, workers: int = 0, progress: bool = True) -> list[dict]:
    """COCO results for every image of the ground truth ``gt_coco`` (a dict or a file).

    Images come from ``ground_truth_loader``, resized like validation (``eval_transform``),
    predicted in batches with a tqdm bar; boxes map back to original pixels. An image whose
    decoded size differs from its record's ``width``/``height`` is an error naming it.
    """
    loader = ground_truth_loader(gt_coco, images_dir, taxset=taxset, image_size=image_size,
                                 batch_size=batch_size, workers=workers)
    if loader is None:
        return []
    device = next(predictor.parameters()).device
    with tqdm(total=len(loader.dataset), unit="img", desc="predict", disable=not progress) as bar:
        return predict(predictor, loader, device, on_batch=bar.update)
