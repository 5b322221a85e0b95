"""Anchor labeling speed: ours (batched) vs effdet's ``AnchorLabeler.batch_label_anchors``, one run.

EfficientDet-D0 anchors at 512x512 (49,104 anchors), batch 16, 20 and 60 random boxes per
image (sides 2%..40% of the image). Both labelers get the same boxes (effdet in its y1x1y2x2 /
1-based-class format) and their targets are checked for equality before timing. Prints the
median of ``--repeats`` interleaved runs and the ratio; ``--device cuda`` adds our labeler on
the GPU for the whole batch; ``--batch 1`` is the data-loader-worker case.

    python benchmarks/bench_labeler.py [--device cuda] [--batch 16] [--repeats 5] [--threads N]
"""
from __future__ import annotations

import argparse
import copy
import statistics
import time
from typing import Callable

import effdet
import torch
from effdet.anchors import AnchorLabeler as EffdetLabeler
from effdet.anchors import Anchors

from taxdet.detection.anchors.labeler import AnchorLabeler, LabelerConfig


def random_batch(batch: int, boxes: int, size: int, seed: int = 0):
    """[B, G, 4] x1y1x2y2 boxes of 8..40% of the image side, [B, G] classes 0..6."""
    gen = torch.Generator().manual_seed(seed)
    wh = size * (0.02 + 0.38 * torch.rand(batch, boxes, 2, generator=gen) ** 2)
    xy = (size - wh) * torch.rand(batch, boxes, 2, generator=gen)
    return torch.cat([xy, xy + wh], dim=-1), torch.randint(0, 7, (batch, boxes), generator=gen)


def median_seconds(fns: dict[str, Callable[[], object]], repeats: int,
                   sync: Callable[[], None] = lambda: None) -> dict[str, float]:
    """Median wall time of each function; runs are interleaved so load bursts hit all alike."""
    for _ in range(2):  # warm-up (effdet's TorchScript matcher profiles its first calls)
        for fn in fns.values():
            fn()
    sync()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(values) for name, values in times.items()}


def flatten_effdet(levels: list[torch.Tensor], batch: int, width: int) -> torch.Tensor:
    return torch.cat([t.reshape(batch, -1, width) for t in levels], dim=1).squeeze(-1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", help="also time ours on this device (e.g. cuda)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch default)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    config = effdet.get_efficientdet_config("efficientdet_d0")
    config.image_size = (512, 512)
    anchors = Anchors.from_config(config)
    reference = EffdetLabeler(anchors, num_classes=7, match_threshold=0.5)
    ours = AnchorLabeler(anchors, LabelerConfig(pos_iou=0.5, neg_iou=0.5))
    print(f"D0 512x512, {ours.num_anchors} anchors, batch {args.batch}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"{'boxes':>5} {'effdet ms':>10} {'ours ms':>8} {'speed-up':>8}" +
          (f" {'ours ' + args.device + ' ms':>14}" if args.device != "cpu" else ""))
    for num_boxes in (20, 60):
        boxes, classes = random_batch(args.batch, num_boxes, 512)
        yxyx, effdet_classes = boxes[..., [1, 0, 3, 2]], classes + 1
        cls, box, npos = reference.batch_label_anchors(yxyx, effdet_classes)
        got = ours(boxes, classes)
        assert torch.equal(flatten_effdet(cls, args.batch, 1), got.cls_targets), "classes differ"
        assert torch.equal(flatten_effdet(box, args.batch, 4), got.box_targets), "boxes differ"
        assert torch.equal(npos, got.num_positives), "positive counts differ"
        times = median_seconds({
            "effdet": lambda: reference.batch_label_anchors(yxyx, effdet_classes),
            "ours": lambda: ours(boxes, classes)}, args.repeats)
        t_ref, t_ours = times["effdet"], times["ours"]
        line = f"{num_boxes:>5} {t_ref * 1e3:>10.1f} {t_ours * 1e3:>8.1f} {t_ref / t_ours:>7.2f}x"
        if args.device != "cpu":
            ms = device_ms(ours, boxes, classes, args.device, args.repeats)
            line += f" {ms:>14.1f}" if ms is not None else f" {'no CUDA':>14}"
        print(line)


def device_ms(ours: AnchorLabeler, boxes: torch.Tensor, classes: torch.Tensor, device: str,
              repeats: int) -> float | None:
    """Our labeler for the whole batch on ``device`` (inputs already there) in ms; None if the
    device is CUDA and there is none."""
    if device.startswith("cuda") and not torch.cuda.is_available():
        return None
    labeler = copy.deepcopy(ours).to(device)
    boxes, classes = boxes.to(device), classes.to(device)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    return median_seconds({"ours": lambda: labeler(boxes, classes)}, repeats, sync)["ours"] * 1e3


if __name__ == "__main__":
    main()
