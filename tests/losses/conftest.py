"""Shared inputs for the loss tests: small but realistic effdet batches."""

import warnings

import pytest

warnings.filterwarnings("ignore", message=".*torch.jit.script.*", category=FutureWarning)

from tests.losses.synthetic_batches import LossBatch, effdet_loss_batch  # noqa: E402


@pytest.fixture(scope="session")
def batch() -> LossBatch:
    """B=2, 128x128 input (levels 3..7, A = 9 * 341 = 3069 anchors), K=7, effdet targets."""
    return effdet_loss_batch(batch_size=2, image_size=128, num_classes=7, seed=0)
