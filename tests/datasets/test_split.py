"""Stable salted-hash train / val split."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from taxdet.datasets.sample import Sample
from taxdet.datasets.split import SplitConfig, assign_split, hash_unit, is_val


def make_samples(n: int, start: int = 0, folder: str = "/data/a") -> list[Sample]:
    return [Sample(image_id=i, file=f"{folder}/{i:06d}.jpg", width=8, height=8, taxonomy="t",
                   label_mask=np.ones(7, bool), content_hash=hashlib.sha256(b"%d" % i).hexdigest())
            for i in range(start, start + n)]


def ids(samples: list[Sample]) -> set[int]:
    return {s.image_id for s in samples}


@pytest.mark.parametrize("by", ["content", "filename"])
def test_adding_images_leaves_existing_assignments_unchanged(by):
    cfg = SplitConfig(val_fraction=0.2, salt="s", by=by)
    train, val = assign_split(make_samples(500), cfg)
    train2, val2 = assign_split(make_samples(1500), cfg)   # 1000 new images
    assert ids(train) <= ids(train2) and ids(val) <= ids(val2)
    assert ids(val2) - ids(val) and ids(train2) - ids(train)  # new images went to both sides


def test_val_fraction_within_tolerance():
    # 10000 draws at p = 0.1: sd = sqrt(0.1 * 0.9 / 10000) = 0.003, tolerance 0.012 = 4 sd
    train, val = assign_split(make_samples(10000), SplitConfig(val_fraction=0.1))
    assert len(train) + len(val) == 10000
    assert abs(len(val) / 10000 - 0.1) < 0.012


def test_raising_val_fraction_only_moves_images_from_train_to_val():
    samples = make_samples(2000)
    _, val10 = assign_split(samples, SplitConfig(val_fraction=0.1))
    _, val30 = assign_split(samples, SplitConfig(val_fraction=0.3))
    assert ids(val10) < ids(val30)


def test_other_salt_draws_an_independent_split():
    samples = make_samples(4000)
    _, a = assign_split(samples, SplitConfig(val_fraction=0.5, salt="a"))
    _, b = assign_split(samples, SplitConfig(val_fraction=0.5, salt="b"))
    # independent halves overlap on ~1/4 of the images: 1000 +- 27 (sd); a bug gives 2000 or 0
    assert 850 < len(ids(a) & ids(b)) < 1150


def test_filename_split_ignores_folder_and_content():
    cfg = SplitConfig(val_fraction=0.5, by="filename")
    here, there = make_samples(200), make_samples(200, folder="/moved/elsewhere")
    for s in there:
        s.content_hash = "different"
    assert [is_val(s, cfg) for s in here] == [is_val(s, cfg) for s in there]


def test_content_split_follows_the_picture_not_the_name():
    cfg = SplitConfig(val_fraction=0.5)
    a, b = make_samples(300), make_samples(300, start=1000)
    for x, y in zip(a, b):
        y.content_hash = x.content_hash        # same pictures under other names
    assert [is_val(s, cfg) for s in a] == [is_val(s, cfg) for s in b]


def test_hash_unit_is_blake2b_of_salt_nul_key():
    # first 8 bytes of blake2b(b"salt\0key"), big-endian, / 2**64
    digest = hashlib.blake2b(b"salt\x00key", digest_size=8).digest()
    assert hash_unit("key", "salt") == int.from_bytes(digest, "big") / 2 ** 64


def test_missing_content_hash_error_names_the_image():
    s = make_samples(1)[0]
    s.content_hash = ""
    with pytest.raises(ValueError, match=r"image id 0 \(/data/a/000000.jpg\): no content_hash"):
        assign_split([s], SplitConfig())


@pytest.mark.parametrize("kwargs", [{"val_fraction": 1.5}, {"by": "path"}])
def test_bad_config_is_rejected(kwargs):
    with pytest.raises(ValueError):
        SplitConfig(**kwargs)
