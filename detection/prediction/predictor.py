"""Predict with a training checkpoint: rebuild the model, load its (EMA) weights, run images.

    predictor, taxset, cfg = load_predictor("runs/exp/best.pt")
    results = predict_images(predictor, "data/demo/test/annotations.json", "data/demo/test/images",
                             taxset=taxset, image_size=cfg.model.image_size)

``results`` is a COCO results list: the ground truth's image ids,
``category_id`` = super-taxonomy column + 1, boxes in original image pixels.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from datasets.images import MissingImagesError
from datasets.sample import Sample
from datasets.torch_dataset import DetectionDataset, collate
from datasets.transforms import AugmentConfig, eval_transform
from detection.training import checkpoint
from detection.model.benches import PredictBench
from detection.training.checkpoint import CheckpointError
from detection.training.config import TrainConfig
from detection.training.distributed import DistInfo, pick_device
from detection.training.steps import predict
from detection.evaluation.inputs import load_json
from detection.model.build import create_model
from supertax import TaxonomySet
from supertax.errors import ConfigError

REQUIRED_KEYS = ("model", "config", "taxonomies", "taxonomy_hash")
EMA_PREFIX = "module."  # timm ModelEmaV3 keeps the averaged copy as ``self.module``
MAX_LISTED = 20


def ema_model_state(ema_state: dict, source: str) -> dict:
    """The model's own keys from a ``ModelEmaV3.state_dict()`` (``module.<key>`` -> ``<key>``)."""
    foreign = [k for k in ema_state if not k.startswith(EMA_PREFIX)]
    if foreign:
        raise CheckpointError(f"{source}: 'ema' weights are not a ModelEmaV3 state dict "
                              f"(keys without {EMA_PREFIX!r}, e.g. {foreign[:3]})")
    return {k[len(EMA_PREFIX):]: v for k, v in ema_state.items()}


def _weights(ckpt: dict, use_ema: bool, source: str) -> tuple[dict, str]:
    """(state dict, "ema" | "model"): the EMA weights when asked for and present."""
    if use_ema and ckpt.get("ema") is not None:
        return ema_model_state(ckpt["ema"], source), "ema"
    return ckpt["model"], "model"


def load_predictor(ckpt_path: str | Path, *, use_ema: bool = True,
                   device: str | torch.device = "cpu", taxset: TaxonomySet | None = None
                   ) -> tuple[PredictBench, TaxonomySet, TrainConfig]:
    """Rebuild the checkpoint's model: ``(PredictBench in eval mode, taxonomies, config)``.

    Taxonomies come from the checkpoint unless ``taxset`` is given, which must then hash
    like the checkpoint's (``CheckpointError`` listing the differences otherwise).
    ``use_ema``: the EMA weights when the checkpoint has them, else the raw model's.
    """
    ckpt = checkpoint.load(ckpt_path)
    missing = [k for k in REQUIRED_KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(f"{ckpt_path}: not a training checkpoint (missing {missing})")
    if taxset is None:
        taxset = TaxonomySet.from_dict(ckpt["taxonomies"])
    checkpoint.check_taxonomy(ckpt, taxset, ckpt_path)  # also catches a tampered 'taxonomies'
    try:
        cfg = TrainConfig.from_dict(ckpt["config"], where=f"{ckpt_path}: config")
    except (TypeError, ValueError) as exc:
        raise CheckpointError(str(exc)) from None
    # the weights come from the checkpoint: a backbone file of the training machine is not needed
    model_cfg = dataclasses.replace(cfg.model, pretrained_backbone=None)
    model = create_model(model_cfg, taxset.num_classes, head_masks=np.asarray(taxset.masks))
    state, which = _weights(ckpt, use_ema, str(ckpt_path))
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(f"{ckpt_path}: '{which}' weights do not fit {cfg.model.name} at "
                              f"{cfg.model.image_size}px with {taxset.num_classes} classes: "
                              f"{exc}") from None
    try:
        device = pick_device(str(device), DistInfo())
    except RuntimeError as exc:  # CUDA asked for but absent
        raise ConfigError(str(exc)) from None
    return PredictBench(model).to(device).eval(), taxset, cfg


def read_ground_truth(gt: dict | str | Path, images_dir: str | Path | None
                      ) -> tuple[dict, Path | None, str]:
    """(COCO dict, folder its file names are relative to, name for messages).

    The folder is ``images_dir``, else the ground-truth file's folder; for an in-memory
    dict without ``images_dir``, None (file names are used as they are).
    """
    raw, source = load_json(gt, "ground truth")
    if images_dir is None and isinstance(gt, (str, Path)):
        images_dir = Path(gt).parent
    return raw, (Path(images_dir) if images_dir is not None else None), source


def image_files(images: list[dict], base: Path | None, source: str) -> list[str]:
    """The file of each COCO image record (absolute ``file_name``, or relative to ``base``).

    Raises ``MissingImagesError`` listing every missing file at once.
    """
    files, missing = [], []
    for img in images:
        name = img.get("file_name")
        path = None if not name else Path(name) if base is None else base / name
        if path is None or not path.is_file():
            missing.append(f"image id {img.get('id')}: " + (str(path) if path else "no file_name"))
        files.append(str(path))
    if missing:
        where = f"relative to {base}" if base is not None else "as given"
        listed = "\n  ".join(missing[:MAX_LISTED])
        more = f"\n  ... and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        raise MissingImagesError(f"{source}: {len(missing)} of {len(images)} image files not found "
                                 f"(file_name {where}; pass --images DIR to look elsewhere):\n  "
                                 f"{listed}{more}")
    return files


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


def predict_images(predictor: PredictBench, gt_coco: dict | str | Path,
                   images_dir: str | Path | None = None, *, taxset: TaxonomySet, image_size: int,
                   batch_size: int = 8, workers: int = 0, progress: bool = True) -> list[dict]:
    """COCO results for every image of the ground truth ``gt_coco`` (a dict or a file).

    Images are resolved as ``image_files`` says (``images_dir``, default: the ground-truth
    file's folder), loaded and resized like validation (``eval_transform``), predicted in
    batches with a tqdm bar; boxes map back to original pixels. An image whose decoded size
    differs from its record's ``width``/``height`` is an error naming it.
    """
    raw, base, source = read_ground_truth(gt_coco, images_dir)
    images = raw.get("images", []) if isinstance(raw, dict) else []
    if not images:
        return []
    samples = image_samples(images, image_files(images, base, source), taxset)
    transform = eval_transform(AugmentConfig(image_size=image_size))
    dataset = DetectionDataset(samples, taxset, transform)
    loader = DataLoader(dataset, batch_size=batch_size, shuffle=False, num_workers=workers,
                        collate_fn=collate)
    device = next(predictor.parameters()).device
    with tqdm(total=len(samples), unit="img", desc="predict", disable=not progress) as bar:
        return predict(predictor, loader, device, on_batch=bar.update)
