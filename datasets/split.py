"""Stable train / val split: each image's side is a pure function of its own key.

An image goes to val iff ``u < val_fraction``, where ``u`` in [0, 1) is the first
8 bytes of ``blake2b(salt + "\\0" + key)`` read as an unsigned integer / 2**64.
The decision depends on nothing but the image's key and the salt, so adding or
removing other images never moves an image between train and val; raising
``val_fraction`` only moves images from train to val, never back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Sequence

from datasets.config_field import config_field
from datasets.sample import Sample
from supertax.errors import ConfigError

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
