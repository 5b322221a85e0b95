"""Shared fixtures for dataset tests: tiny COCO files with tiny PNG images in tmp_path."""

from __future__ import annotations

import dataclasses
import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import supertax
from supertax import DataSource, TaxonomySet

REPO = Path(__file__).resolve().parents[2]


@dataclass
class CocoFiles:
    """A written COCO file: its path, its image folder and the dict that was written."""

    annotations: Path
    images: Path
    data: dict

    @property
    def source(self) -> DataSource:
        return DataSource(str(self.annotations), str(self.images))


def write_coco(root: Path, name: str = "coco", images: list[dict] | None = None,
               annotations: list[dict] | None = None, categories: list | None = None,
               write_images: bool = True) -> CocoFiles:
    """Write ``root/name/annotations.json`` and one noise PNG per image in ``root/name/images``.

    Defaults: one 64x48 image with id 1; image ``file_name`` = ``<id>.png``; annotation
    ``id`` = 1-based position, ``iscrowd`` 0, ``area`` = w * h; categories given as
    names get ids 1..n. PNG pixels are seeded by (name, id), so every image has unique bytes.
    """
    folder = root / name
    (folder / "images").mkdir(parents=True, exist_ok=True)
    images = [dict({"file_name": f"{im['id']}.png"}, **im)
              for im in (images if images is not None else [{"id": 1, "width": 64, "height": 48}])]
    anns = [dict({"id": i + 1, "iscrowd": 0, "area": _area(a.get("bbox"))}, **a)
            for i, a in enumerate(annotations or [])]
    cats = [c if isinstance(c, dict) else {"id": i + 1, "name": c}
            for i, c in enumerate(categories if categories is not None else ["Human"])]
    data = {"images": images, "annotations": anns, "categories": cats}
    (folder / "annotations.json").write_text(json.dumps(data))
    if write_images:
        for im in images:
            seed = zlib.crc32(f"{name}/{im['id']}".encode())
            pixels = np.random.default_rng(seed).integers(0, 256, (im["height"], im["width"], 3))
            (folder / "images" / im["file_name"]).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels.astype(np.uint8)).save(folder / "images" / im["file_name"])
    return CocoFiles(folder / "annotations.json", folder / "images", data)


def _area(bbox) -> float:
    try:
        return float(bbox[2]) * float(bbox[3])
    except (TypeError, ValueError, IndexError, KeyError):
        return 0.0


@pytest.fixture
def make_coco(tmp_path):
    """Factory fixture: ``make_coco(name=..., images=..., annotations=..., categories=...)``
    writes a tiny COCO dataset under tmp_path (see ``write_coco``) and returns ``CocoFiles``."""
    def make(name: str = "coco", **kwargs) -> CocoFiles:
        return write_coco(tmp_path, name, **kwargs)
    return make


@pytest.fixture(scope="session")
def driving() -> TaxonomySet:
    """The repo's driving taxonomies (super-taxonomy + customers a, b, c)."""
    return supertax.load([REPO / "taxonomies" / "driving"])


@pytest.fixture
def driving_with_data(driving):
    """Factory: ``driving_with_data(customer_a=[CocoFiles, ...], ...)`` -> the driving
    TaxonomySet whose taxonomies read these files (taxonomies not named get no data)."""
    def make(**data: list[CocoFiles]) -> TaxonomySet:
        return TaxonomySet(driving.super, [
            dataclasses.replace(t, data=[f.source for f in data.get(t.name, [])])
            for t in driving.taxonomies])
    return make
