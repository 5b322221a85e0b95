"""Forward + backward time of our masked detection loss vs effdet.loss.loss_fn, same inputs.

Inputs: ``tests.losses.synthetic_batches.effdet_loss_batch`` (effdet's AnchorLabeler on random
boxes, IoU band [0.4, 0.5) marked IGNORE). Timed per call, each ending in ``torch.autograd.grad``
with respect to the per-level head outputs (so gradients reach the model's layout):

- effdet:  ``effdet.loss.loss_fn(per-level outputs, per-level targets)``.
- ours:    ``levels_to_B_A_K`` of both heads (flattening is timed) + ``masked_detection_loss``
           with flat targets (the labeler's output format), a class mask
           (~30 % of columns unlabeled) and per-anchor box weights.
- strict:  ``ours`` with ``certain_cells="none"`` (labeled columns only): what the certain-cell
           rules cost.
- drop-in: ``taxdet.losses.detection_masking`` with effdet's per-level lists (flattens targets too).

The three run interleaved, after warm-up; medians of ``--repeats`` are printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from effdet.loss import loss_fn

from taxdet.losses import DetectionLossConfig, detection_loss, masked_detection_loss
from tests.losses.synthetic_batches import LossBatch, effdet_loss_batch

CFG = DetectionLossConfig()                            # certain cells on (the default rule)
STRICT = DetectionLossConfig(certain_cells="none")     # labeled columns only


def _effdet(b: LossBatch, extras: dict) -> None:
    total, _, _ = loss_fn(b.cls_outputs, b.box_outputs, b.cls_targets, b.box_targets,
                          b.num_positives, b.num_classes, CFG.alpha, CFG.gamma, CFG.delta,
                          CFG.box_loss_weight)
    torch.autograd.grad(total, b.cls_outputs + b.box_outputs)


def _ours(b: LossBatch, extras: dict, cfg: DetectionLossConfig = CFG) -> None:
    cls_logits, box_pred = b.flat_outputs()
    out = masked_detection_loss(cls_logits, box_pred, *extras["flat_targets"], b.num_positives,
                                cfg, class_mask=extras["class_mask"],
                                box_weights=extras["box_weights"])
    torch.autograd.grad(out["loss"], b.cls_outputs + b.box_outputs)


def _ours_strict(b: LossBatch, extras: dict) -> None:
    _ours(b, extras, STRICT)


def _dropin(b: LossBatch, extras: dict) -> None:
    total, _, _ = detection_loss(b.cls_outputs, b.box_outputs, b.cls_targets, b.box_targets,
                                 b.num_positives, b.num_classes, CFG.alpha, CFG.gamma,
                                 CFG.delta, CFG.box_loss_weight)
    torch.autograd.grad(total, b.cls_outputs + b.box_outputs)


def _extras(b: LossBatch) -> dict:
    gen = torch.Generator().manual_seed(1)
    cls_targets, box_targets = b.flat_targets()
    B = cls_targets.shape[0]
    return {"flat_targets": (cls_targets, box_targets),
            "class_mask": torch.rand(B, b.num_classes, generator=gen) > 0.3,
            "box_weights": (cls_targets >= 0).float() * (1 + torch.rand(cls_targets.shape,
                                                                        generator=gen))}


def run(batch: int, size: int, classes: int, repeats: int, warmup: int) -> dict[str, float]:
    """Median seconds per fwd+bwd call for each of effdet / ours / strict / drop-in."""
    b = effdet_loss_batch(batch_size=batch, image_size=size, num_classes=classes, seed=0)
    extras = _extras(b)
    fns = {"effdet": _effdet, "ours": _ours, "strict": _ours_strict, "drop-in": _dropin}
    times: dict[str, list[float]] = {k: [] for k in fns}
    for i in range(warmup + repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn(b, extras)
            if i >= warmup:
                times[name].append(time.perf_counter() - start)
    anchors = b.flat_targets()[0].shape[1]
    print(f"shapes: B={batch} image={size}x{size} A={anchors} K={classes} "
          f"cls_logits=[{batch}, {anchors}, {classes}] positives={int(b.num_positives.sum())} "
          f"threads={torch.get_num_threads()} load_avg={os.getloadavg()[0]:.2f}")
    return {k: statistics.median(v) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--size", type=int, default=512, help="square input size (D0: 512)")
    ap.add_argument("--classes", type=int, default=20, help="K")
    ap.add_argument("--repeats", type=int, default=10)
    ap.add_argument("--warmup", type=int, default=2)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    med = run(args.batch, args.size, args.classes, args.repeats, args.warmup)
    for name, sec in med.items():
        print(f"{name:>8}: {sec * 1e3:8.1f} ms  ratio vs effdet {sec / med['effdet']:.3f}x")


if __name__ == "__main__":
    main()
