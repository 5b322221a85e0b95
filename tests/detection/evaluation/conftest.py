"""Shared fixtures for the evaluation tests (the builders are in eval_cases.py)."""

import pytest


@pytest.fixture(params=["pycocotools", "faster"])
def engine(request):
    """Every test using it runs on both engines."""
    return request.param
