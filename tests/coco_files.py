"""Tiny COCO files with tiny noise PNG images, written into a folder for the tests."""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from taxdet.supertax import DataSource


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
