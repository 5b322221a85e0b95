"""Stable train / val split: each image's side is a pure function of its own key; ``split.json``,
the record of a run's split.

An image goes to val iff ``u < val_fraction``, where ``u`` in [0, 1) is the first
8 bytes of ``blake2b(salt + "\\0" + key)`` read as an unsigned integer / 2**64.
The decision depends on nothing but the image's key and the salt, so adding or
removing other images never moves an image between train and val; raising
``val_fraction`` only moves images from train to val, never back.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from taxdet.core.config_field import config_field
from taxdet.core.errors import ConfigError
from taxdet.core.files import atomic_open
from taxdet.datasets.sample import Sample

SplitKey = Literal["content", "filename"]


@dataclass(frozen=True)
class SplitConfig:
    """How to split.

    ``by="content"`` keys on ``Sample.content_hash`` (the same picture keeps its side
    even if renamed or moved; needs the merger's content hashes), ``by="filename"``
    on the file's base name (same-named files always share a side).
    Changing ``salt`` draws a new, independent split.
    """

    val_fraction: float = config_field(0.1, "share of the images that go to validation, in "
                                       "[0, 1]")
    salt: str = config_field("split-v1", "change it to draw a new, independent split")
    by: SplitKey = config_field("content", "content: the image bytes' hash (a renamed or moved "
                                "picture keeps its side); filename: the file's base name")

    def __post_init__(self) -> None:
        if not 0.0 <= self.val_fraction <= 1.0:
            raise ConfigError(f"val_fraction must be in [0, 1], got {self.val_fraction}")
        if self.by not in ("content", "filename"):
            raise ConfigError(f"split key must be 'content' or 'filename', got {self.by!r}")


def hash_unit(key: str, salt: str) -> float:
    """Uniform value in [0, 1) from ``blake2b(salt + "\\0" + key)`` (first 8 bytes)."""
    digest = hashlib.blake2b(f"{salt}\0{key}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0 ** 64


def split_key(sample: Sample, by: SplitKey) -> str:
    """The string a sample is hashed by; raises ``ValueError`` if the content hash is missing."""
    if by == "filename":
        return Path(sample.file).name
    if not sample.content_hash:
        raise ConfigError(f"image id {sample.image_id} ({sample.file}): no content_hash; compute "
                          "content hashes when merging, or split with by='filename'")
    return sample.content_hash


def is_val(sample: Sample, cfg: SplitConfig) -> bool:
    """True if ``sample`` belongs to the validation side."""
    return hash_unit(split_key(sample, cfg.by), cfg.salt) < cfg.val_fraction


def assign_split(samples: Sequence[Sample], cfg: SplitConfig) -> tuple[list[Sample], list[Sample]]:
    """Split ``samples`` into ``(train, val)``, each in input order."""
    train: list[Sample] = []
    val: list[Sample] = []
    for s in samples:
        (val if is_val(s, cfg) else train).append(s)
    return train, val


# -- split.json: which images a run trained and validated on ------------------------------------
SPLIT_FORMAT = 1


def split_image(sample: Sample) -> dict:
    """One image of ``split.json``: its super-dataset ``id``, ``file_name`` (the image file's
    path), ``content_hash``, and ``source_file`` / ``source_image_id`` (the customer's file and
    image id) when the sample has them."""
    out = {"id": sample.image_id, "file_name": str(sample.file).replace(os.sep, "/"),
           "content_hash": sample.content_hash}
    source_file = getattr(sample, "source_file", "")
    if source_file:
        out["source_file"] = source_file
    if sample.source_image_id != -1:
        out["source_image_id"] = sample.source_image_id
    return out


def split_record(train: Sequence[Sample], val: Sequence[Sample], cfg: SplitConfig) -> dict:
    """The ``split.json`` document: ``{"format": 1, "val_fraction", "salt", "by", "train": [...],
    "val": [...]}``, images as ``split_image`` writes them, in split order."""
    return {"format": SPLIT_FORMAT, "val_fraction": cfg.val_fraction, "salt": cfg.salt,
            "by": cfg.by, "train": [split_image(s) for s in train],
            "val": [split_image(s) for s in val]}


def write_split(path: str | Path, train: Sequence[Sample], val: Sequence[Sample],
                cfg: SplitConfig) -> None:
    """Write ``split_record`` to ``path`` atomically (compact JSON: a million images take
    seconds; ``jq`` or ``python -m json.tool`` show it indented). Read back, checked, by
    ``taxdet.detection.evaluation.run_split.read_split`` (``evaluate.py --run DIR --split val``)."""
    with atomic_open(path) as f:
        f.write(json.dumps(split_record(train, val, cfg), separators=(",", ":")))  # C encoder
