"""One full training step: ours (labeling + forward + masked loss + backward + optimizer) vs effdet.

Both sides start from the same EfficientDet weights, see the same batch and boxes, and use the same
optimizer. effdet's side is its own ``DetBenchTrain`` with its labeler (``bench_labeler=True``);
ours is ``taxdet.detection.model.detector_wrappers.TrainBench`` labeling on the device, with
taxonomy masks, ancestors and box weights on. Steps alternate between the two; the median is
reported.

With ``--pseudo``, a third step adds pseudo-labels (the teacher's no-grad forward) and is
compared with our plain masked step.

    python benchmarks/bench_train_step.py [--image-size 512] [--batch-size 4] [--repeats 3]
        [--channels-last] [--pseudo]
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
import warnings

import torch
from effdet.bench import DetBenchTrain

import taxdet.supertax as supertax
from taxdet.core.targets import PADDING
from taxdet.detection.anchors.labeler import LabelerConfig
from taxdet.detection.model.build import ModelConfig, create_model
from taxdet.detection.model.detector_wrappers import TrainBench
from taxdet.losses import DetectionLossConfig
from taxdet.losses.loss_config import PseudoLabelConfig


def make_batch(taxset: supertax.TaxonomySet, batch: int, size: int, boxes: int, seed: int) -> dict:
    """A batch in our collate format with random boxes; ``boxes`` per image (last few padded)."""
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(batch, boxes, 2, generator=g) * size * 0.8
    wh = 8 + torch.rand(batch, boxes, 2, generator=g) * size * 0.3
    xyxy = torch.cat([xy, (xy + wh).clamp(max=size - 1)], dim=-1)
    classes = torch.randint(0, taxset.num_classes, (batch, boxes), generator=g)
    classes[:, -2:] = PADDING
    xyxy[:, -2:] = 0
    tax = torch.randint(0, len(taxset.taxonomies), (batch,), generator=g)
    return {"image": torch.randn(batch, 3, size, size, generator=g), "boxes": xyxy,
            "classes": classes, "box_weights": (classes >= 0).float(),
            "ignore": torch.zeros(batch, 1, 4), "label_mask": torch.as_tensor(taxset.masks)[tax],
            "taxonomy": tax, "image_id": torch.arange(batch)}


def effdet_target(batch: dict) -> dict:
    """effdet's format: boxes y1x1y2x2, classes 1-based, -1 padding."""
    b = batch["boxes"]
    cls = batch["classes"].float() + 1
    cls[batch["classes"] < 0] = -1
    return {"bbox": b[..., [1, 0, 3, 2]], "cls": cls}


def step_time(bench, batch_arg, opt, **kwargs) -> float:
    t0 = time.perf_counter()
    out = bench(*batch_arg, **kwargs)
    opt.zero_grad(set_to_none=True)
    out["loss"].backward()
    opt.step()
    return time.perf_counter() - t0


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--image-size", type=int, default=512)
    p.add_argument("--batch-size", type=int, default=4)
    p.add_argument("--boxes", type=int, default=20)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    p.add_argument("--channels-last", action="store_true",
                   help="our step in channels-last memory layout (run.channels_last)")
    p.add_argument("--pseudo", action="store_true",
                   help="also time our step with pseudo-labels (one extra no-grad teacher "
                        "forward, class head only) against our plain masked step")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    taxset = supertax.load(["taxonomies/driving"])
    model = create_model(ModelConfig("efficientdet_d0", args.image_size), taxset.num_classes)
    ours = TrainBench(copy.deepcopy(model), torch.as_tensor(taxset.ancestors), LabelerConfig(),
                      DetectionLossConfig())
    ref = DetBenchTrain(copy.deepcopy(model), create_labeler=True)
    opt_ours = torch.optim.AdamW(ours.parameters(), lr=1e-4)
    opt_ref = torch.optim.AdamW(ref.parameters(), lr=1e-4)
    batch = make_batch(taxset, args.batch_size, args.image_size, args.boxes, seed=1)
    ours_batch = dict(batch)
    if args.channels_last:
        ours = ours.to(memory_format=torch.channels_last)
        ours_batch["image"] = batch["image"].contiguous(memory_format=torch.channels_last)
    steps = {"effdet": lambda: step_time(ref, (batch["image"], effdet_target(batch)), opt_ref),
             "ours": lambda: step_time(ours, (ours_batch,), opt_ours)}
    if args.pseudo:
        steps["pseudo"] = pseudo_step(model, taxset, ours_batch, args.channels_last)
    times: dict[str, list[float]] = {k: [] for k in steps}
    for i in range(args.repeats + 1):  # the first round warms up
        for name, step in steps.items():
            t = step()
            if i:
                times[name].append(t)
    med = {k: statistics.median(v) for k, v in times.items()}
    b = args.batch_size
    print(f"EfficientDet-D0 train step, {args.image_size}x{args.image_size}, batch {b}, "
          f"{args.boxes} boxes/image, K={taxset.num_classes}, {args.threads} threads, "
          f"median of {args.repeats}" + (", ours channels-last" if args.channels_last else ""))
    for name in steps:
        print(f"  {name:7s} {med[name] * 1000:9.1f} ms/step  {b / med[name]:6.2f} images/s")
    print(f"  ratio ours/effdet: {med['ours'] / med['effdet']:.3f}x (goal <= 1.02x)")
    if args.pseudo:
        print(f"  ratio pseudo/ours: {med['pseudo'] / med['ours']:.3f}x (goal <= 1.35x)")


def pseudo_step(model, taxset: supertax.TaxonomySet, batch: dict, channels_last: bool):
    """Our step with pseudo-labels from a teacher (an eval-mode copy, as the EMA model is)."""
    bench = TrainBench(copy.deepcopy(model), torch.as_tensor(taxset.ancestors), LabelerConfig(),
                       DetectionLossConfig(), pseudo=PseudoLabelConfig(enabled=True))
    teacher = copy.deepcopy(model).eval()
    if channels_last:
        bench = bench.to(memory_format=torch.channels_last)
        teacher = teacher.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(bench.parameters(), lr=1e-4)
    return lambda: step_time(bench, (batch,), opt, teacher=teacher)


if __name__ == "__main__":
    main()
