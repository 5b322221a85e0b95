"""Training data loading speed vs a CPU EfficientDet-D0 train step, one run.

Images/s of the train pipeline (cv2 decode, albumentations augmentation, collate with
normalisation; TaxonomyWeightedSampler over the demo customers) with 0 and 2 DataLoader
workers, batch 8, at 256 and 512 px, next to the images/s of an effdet D0
``DetBenchTrain`` forward + backward + SGD step on the same batches. The ratio
loader / model must stay above 1 for loading not to be the bottleneck.
Uses ``--data`` (the demo layout) or generates the demo into a temporary folder.

    python benchmarks/bench_loader.py [--data data/demo] [--batches 30] [--steps 3]
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import effdet
import numpy as np
import torch
from torch.utils.data import DataLoader

import taxdet.supertax as supertax
from taxdet.datasets.demo import DemoConfig, generate_demo
from taxdet.datasets.sample import Sample
from taxdet.datasets.sampler import TaxonomyWeightedSampler
from taxdet.datasets.torch_dataset import DetectionDataset, collate
from taxdet.datasets.transforms import AugmentConfig, train_transform

REPO = Path(__file__).resolve().parents[1]


def demo_samples(root: Path, taxset) -> list[Sample]:
    """Samples from each customer's ``annotations_full.json`` (super columns = id - 1)."""
    samples: list[Sample] = []
    for tax in taxset.taxonomies:
        coco = json.loads((root / tax.name / "annotations_full.json").read_text())
        anns: dict[int, list[dict]] = {}
        for a in coco["annotations"]:
            anns.setdefault(a["image_id"], []).append(a)
        for im in coco["images"]:
            own = [a for a in anns.get(im["id"], []) if not a["iscrowd"]]
            xywh = np.array([a["bbox"] for a in own], np.float32).reshape(-1, 4)
            samples.append(Sample(
                image_id=len(samples) + 1, file=str(root / tax.name / "images" / im["file_name"]),
                width=im["width"], height=im["height"], taxonomy=tax.name,
                label_mask=taxset.label_mask(tax.name), boxes=np.concatenate(
                    [xywh[:, :2], xywh[:, :2] + xywh[:, 2:]], axis=1),
                classes=np.array([a["category_id"] - 1 for a in own], np.int64),
                box_weights=np.ones(len(own), np.float32)))
    return samples


def loader_images_per_s(samples, taxset, size: int, workers: int, batch: int,
                        batches: int) -> float:
    """Steady-state images/s (the first batch, with worker start-up, is not timed)."""
    ds = DetectionDataset(samples, taxset, train_transform(AugmentConfig(image_size=size), 0))
    sampler = TaxonomyWeightedSampler.from_samples(samples, taxset, num_samples=batch * batches)
    it = iter(DataLoader(ds, batch_size=batch, sampler=sampler, num_workers=workers,
                         collate_fn=collate))
    next(it)
    start = time.perf_counter()
    n = sum(len(b["image"]) for b in it)
    return n / (time.perf_counter() - start)


def model_images_per_s(samples, taxset, size: int, batch: int, steps: int) -> float:
    """Images/s of effdet D0 train steps (forward, backward, SGD) on real loader batches."""
    bench = effdet.create_model("efficientdet_d0", bench_task="train", num_classes=7,
                                image_size=(size, size), pretrained=False,
                                pretrained_backbone=False, bench_labeler=True)
    bench.train()
    opt = torch.optim.SGD(bench.parameters(), lr=1e-3)
    ds = DetectionDataset(samples, taxset, train_transform(AugmentConfig(image_size=size), 0))
    batches = list(DataLoader(ds, batch_size=batch, collate_fn=collate, shuffle=False))
    times = []
    for b in batches[:steps + 1]:  # first step is warm-up
        target = {"bbox": b["boxes"][..., [1, 0, 3, 2]],   # effdet: y1x1y2x2
                  "cls": torch.where(b["classes"] >= 0, b["classes"] + 1, -1).float()}
        start = time.perf_counter()
        opt.zero_grad()
        bench(b["image"], target)["loss"].backward()
        opt.step()
        times.append(time.perf_counter() - start)
    return batch / float(np.median(times[1:]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / "data" / "demo")
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--batches", type=int, default=30, help="timed loader batches")
    parser.add_argument("--steps", type=int, default=3, help="timed model steps")
    args = parser.parse_args()
    taxset = supertax.load([REPO / "taxonomies" / "driving"])
    with tempfile.TemporaryDirectory() as tmp:
        root = args.data
        if not (root / "test" / "annotations.json").is_file():
            root = Path(tmp)
            print(f"{args.data} has no demo data: generating it into {root}")
            generate_demo(root, taxset, DemoConfig())
        samples = demo_samples(root, taxset)
        print(f"{len(samples)} demo images, batch {args.batch}, torch threads "
              f"{torch.get_num_threads()}; images/s")
        print(f"{'size':>5} {'workers':>7} {'loader':>8} {'D0 step':>8} {'loader/D0':>9}")
        for size in args.sizes:
            model = model_images_per_s(samples, taxset, size, args.batch, args.steps)
            for w in args.workers:
                loader = loader_images_per_s(samples, taxset, size, w, args.batch, args.batches)
                print(f"{size:5d} {w:7d} {loader:8.1f} {model:8.1f} {loader / model:8.1f}x")


if __name__ == "__main__":
    main()
