from pathlib import Path

import numpy as np
import pytest

import supertax

REPO = Path(__file__).resolve().parents[1]
DRIVING = REPO / "taxonomies" / "driving"


@pytest.fixture(scope="session")
def taxset():
    return supertax.load([DRIVING])


@pytest.fixture(scope="session")
def head_masks(taxset):
    return np.asarray(taxset.masks)
