import numpy as np
import pytest

import supertax

DRIVING = "taxonomies/driving"


@pytest.fixture(scope="session")
def taxset():
    return supertax.load([DRIVING])


@pytest.fixture(scope="session")
def head_masks(taxset):
    return np.asarray(taxset.masks)
