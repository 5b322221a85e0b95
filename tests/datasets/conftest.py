"""Shared fixtures for dataset tests: tiny COCO files with tiny PNG images in tmp_path."""

from __future__ import annotations

import dataclasses

import pytest

from taxdet.supertax import TaxonomySet
from tests.coco_files import CocoFiles, write_coco


@pytest.fixture
def make_coco(tmp_path):
    """Factory fixture: ``make_coco(name=..., images=..., annotations=..., categories=...)``
    writes a tiny COCO dataset under tmp_path (see ``write_coco``) and returns ``CocoFiles``."""
    def make(name: str = "coco", **kwargs) -> CocoFiles:
        return write_coco(tmp_path, name, **kwargs)
    return make


@pytest.fixture
def driving_with_data(driving):
    """Factory: ``driving_with_data(customer_a=[CocoFiles, ...], ...)`` -> the driving
    TaxonomySet whose taxonomies read these files (taxonomies not named get no data)."""
    def make(**data: list[CocoFiles]) -> TaxonomySet:
        return TaxonomySet(driving.super, [
            dataclasses.replace(t, data=[f.source for f in data.get(t.name, [])])
            for t in driving.taxonomies])
    return make
