"""The pieces of the loop: one training step and the learning-rate schedule. The loop itself
is ``TrainerBase.fit`` in ``taxdet.detection.engine.trainer_base``, which wires these to a
task's data, validation, checkpoints and logging.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn as nn

from taxdet.core.errors import InputError
from taxdet.detection.engine.distributed import all_ranks_true


class NonFiniteLossError(InputError, RuntimeError):
    pass


def warmup_cosine(step: int, total: int, warmup: int, min_ratio: float) -> float:
    """LR multiplier: linear warm-up over ``warmup`` steps, then cosine down to ``min_ratio``."""
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    span = max(1, total - warmup)
    progress = min(1.0, (step - warmup) / span)
    return min_ratio + (1 - min_ratio) * 0.5 * (1 + math.cos(math.pi * progress))


def effective_warmup(warmup: int, total: int, lr: float) -> tuple[int, str | None]:
    """The warm-up a run of ``total`` steps uses, and a warning when ``warmup`` does not suit it.

    A warm-up of at least the whole run would never reach the peak rate (4 steps of a 100-step
    warm-up peak at lr x 4 / 100): it becomes ``total // 4`` steps, with a warning. A warm-up
    longer than half the run is kept, with a warning.
    """
    if total <= 0 or warmup <= total // 2:
        return warmup, None
    if warmup < total:
        return warmup, (f"the warm-up (optim.warmup_steps {warmup}) takes more than half of the "
                        f"run's {total} steps: the learning rate peaks at step {warmup} and "
                        f"decays over the last {total - warmup}")
    short = total // 4
    return short, (f"optim.warmup_steps {warmup} >= the run's {total} steps: the learning rate "
                   f"would peak at {lr * total / warmup:.3g} instead of {lr:g}; warming up over "
                   f"{short} step(s) (a quarter of the run) instead; set --optim.warmup_steps "
                   "below the run's length to choose")


def to_device(batch: dict[str, Any], device: torch.device, channels_last: bool = False
              ) -> dict[str, Any]:
    """The batch's tensors on ``device``; ``image`` [B, 3, H, W] channels-last if asked."""
    out = {k: (v.to(device, non_blocking=True) if torch.is_tensor(v) else v)
           for k, v in batch.items()}
    if channels_last:
        out["image"] = out["image"].contiguous(memory_format=torch.channels_last)
    return out


def train_step(bench: nn.Module, batch: dict[str, Any], optimizer: torch.optim.Optimizer,
               scaler: torch.amp.GradScaler, clip_grad: float, step: int,
               teacher: nn.Module | None = None) -> dict[str, float]:
    """Forward, masked loss, backward, clip, optimizer step. Returns the losses as floats.

    ``teacher``: the model whose confident scores pseudo-label masked cells (the EMA), or None.
    ``step`` only names the step in messages. Raises ``NonFiniteLossError`` naming the step
    and the batch's image ids before any weight is changed. In a distributed run every rank
    raises when any rank's loss is non-finite (no rank is left waiting in the all-reduce).
    """
    device_type = batch["image"].device.type
    with torch.autocast(device_type, enabled=scaler.is_enabled()):
        losses = bench(batch) if teacher is None else bench(batch, teacher=teacher)
    loss = losses["loss"]
    finite = bool(torch.isfinite(loss))
    if not all_ranks_true(finite):
        ids = batch["image_id"].tolist()
        parts = ", ".join(f"{k.removesuffix('_loss')} {v.item()}" for k, v in losses.items()
                          if k != "loss")  # detection: "class 0.5, box nan"
        where = (f"non-finite loss {loss.item()} at step {step}" + f" ({parts})" * bool(parts)
                 if not finite
                 else f"non-finite loss on another rank at step {step} "
                      f"(this rank's is {loss.item()})")
        raise NonFiniteLossError(f"{where}; batch image ids: {ids}")
    optimizer.zero_grad(set_to_none=True)
    scaler.scale(loss).backward()
    if clip_grad > 0:
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(bench.parameters(), clip_grad)
    scaler.step(optimizer)
    scaler.update()
    return {k: v.item() for k, v in losses.items()}
