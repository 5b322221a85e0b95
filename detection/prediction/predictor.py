"""Predict with a training checkpoint: rebuild the model, load its (EMA) weights, run images.

    predictor, taxset, cfg = load_predictor("runs/exp/best.pt")   # decoding: coverage
    results = predict_images(predictor, "data/demo/test/annotations.json", "data/demo/test/images",
                             taxset=taxset, image_size=cfg.model.image_size)

The checkpoint is read and its model rebuilt by the engine's ``load_model``
(``taxdet.detection.engine.model_loading``); ``predict`` runs a predictor over a loader (also
validation's). ``results`` is a COCO results list: the ground truth's image ids,
``category_id`` = super-taxonomy column + 1, boxes in original image pixels.

Decoding (``taxdet.detection.prediction.hierarchy_decoding``): by default ``coverage``, i.e.
hierarchy-consistent scores (each parent column the max over its descendants before NMS) with
the checkpoint's decoding plan (columns that never trained against background scored from
their descendants, or dropped). ``set_hierarchy_decoding`` switches a loaded predictor.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from taxdet.datasets.images import image_files, read_ground_truth
from taxdet.datasets.sample import Sample
from taxdet.datasets.torch_dataset import DetectionDataset, collate
from taxdet.datasets.transforms import AugmentConfig, eval_transform
from taxdet.detection.engine.model_loading import ModelSpec, load_model
from taxdet.detection.model.build import create_model
from taxdet.detection.model.detector_config import TrainConfig
from taxdet.detection.model.detector_wrappers import PredictBench, to_coco_results
from taxdet.detection.prediction.hierarchy_decoding import Decoding, set_hierarchy_decoding
from taxdet.supertax import TaxonomySet


def detector_description(cfg: TrainConfig, taxset: TaxonomySet) -> str:
    return f"{cfg.model.name} at {cfg.model.image_size}px with {taxset.num_classes} classes"


def build_detector(cfg: TrainConfig, taxset: TaxonomySet) -> torch.nn.Module:
    """A fresh network for ``cfg``; its weights come from the checkpoint, so a backbone file
    of the training machine is not needed."""
    model_cfg = dataclasses.replace(cfg.model, pretrained_backbone=None)
    return create_model(model_cfg, taxset.num_classes, head_masks=np.asarray(taxset.masks))


DETECTOR = ModelSpec(TrainConfig, build_detector, detector_description,
                     wrong_task="tools/train.py writes detector checkpoints; a classifier's is "
                     "scored by tools/evaluate_classifier.py", extras=("decoding_plan",))


def load_predictor(ckpt_path: str | Path, *, use_ema: bool = True,
                   device: str | torch.device = "cpu", taxset: TaxonomySet | None = None,
                   hierarchy_decoding: Decoding = None
                   ) -> tuple[PredictBench, TaxonomySet, TrainConfig]:
    """Rebuild the checkpoint's model: ``(PredictBench in eval mode, taxonomies, config)``.

    Taxonomies come from the checkpoint unless ``taxset`` is given, which must then hash
    like the checkpoint's (``CheckpointError`` listing the differences otherwise).
    ``use_ema``: the EMA weights when the checkpoint has them, else the raw model's.
    ``hierarchy_decoding``: ``own``, ``hierarchy`` or ``coverage`` (None, the default: the
    checkpoint's decoding plan, hierarchy decoding without one; True / False: hierarchy / own;
    ``taxdet.detection.prediction.hierarchy_decoding``). The plan stays on the predictor
    (``predictor.decoding_plan``), so ``set_hierarchy_decoding`` can switch it later.
    """
    loaded = load_model(ckpt_path, DETECTOR, use_ema=use_ema, device=device, taxset=taxset)
    predictor = PredictBench(loaded.model).to(loaded.device).eval()
    set_hierarchy_decoding(predictor, loaded.taxset, hierarchy_decoding,
                           loaded.extras.get("decoding_plan"))
    return predictor, loaded.taxset, loaded.config


@torch.no_grad()
def predict(predictor: PredictBench, batches: Iterable[dict], device: torch.device,
            on_batch: Callable[[int], None] | None = None) -> list[dict]:
    """COCO results (super-taxonomy category ids) for every image of ``batches``."""
    predictor.eval()
    results: list[dict] = []
    for batch in batches:
        dets = predictor(batch["image"].to(device), batch["scale"].to(device),
                         batch["orig_size"].to(device))
        results += to_coco_results(dets, batch["image_id"].tolist())
        if on_batch is not None:
            on_batch(len(dets))
    return results


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
    ``predictor``: a ``PredictBench``, or any detector with its call, ``eval()`` and a
    ``device`` for its inputs (``taxdet.detection.export.trunk_backends.TrunkDetector``).

    Images come from ``ground_truth_loader``, resized like validation (``eval_transform``),
    predicted in batches with a tqdm bar; boxes map back to original pixels. An image whose
    decoded size differs from its record's ``width``/``height`` is an error naming it.
    """
    loader = ground_truth_loader(gt_coco, images_dir, taxset=taxset, image_size=image_size,
                                 batch_size=batch_size, workers=workers)
    if loader is None:
        return []
    device = getattr(predictor, "device", None) or next(predictor.parameters()).device
    with tqdm(total=len(loader.dataset), unit="img", desc="predict", disable=not progress) as bar:
        return predict(predictor, loader, device, on_batch=bar.update)
