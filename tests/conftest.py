"""Fixtures shared by every test folder."""

import numpy as np
import pytest

import supertax
from tests.paths import DRIVING


@pytest.fixture(scope="session")
def taxset():
    return supertax.load([DRIVING])


@pytest.fixture(scope="session")
def driving(taxset):
    """The repo's driving taxonomies (super-taxonomy + customers a, b, c): ``taxset`` under
    the name the dataset and evaluation tests use."""
    return taxset


@pytest.fixture(scope="session")
def head_masks(taxset):
    return np.asarray(taxset.masks)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a test module: tiny models on a shared 2-core machine run ~10x
    slower with two spinning OpenMP threads. Use as
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch  # here, not at the top: the supertax tests need no torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
