"""Seeds of the training process and of its data-loader workers."""

from __future__ import annotations

import random

import numpy as np
import torch


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def worker_init(worker_id: int) -> None:
    """A data-loader worker's ``worker_init_fn``: one intra-op thread (the workers share the
    cores with the training process)."""
    torch.set_num_threads(1)
