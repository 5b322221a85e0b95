"""Image checks: missing files listed all at once, broken and mis-sized images named."""

from __future__ import annotations

import hashlib

import pytest
from PIL import Image

from taxdet.datasets.images import ImageCheckError, ImageRef, MissingImagesError, check_images


def png(path, w=16, h=12, colour=(10, 200, 30)) -> str:
    Image.new("RGB", (w, h), colour).save(path)
    return str(path)


def test_hash_is_sha1_of_the_file_bytes(tmp_path):
    path = png(tmp_path / "a.png")
    assert check_images([ImageRef(path, 16, 12, "x")]) == \
        [hashlib.sha1(open(path, "rb").read()).hexdigest()]


def test_all_missing_files_are_listed_in_one_error(tmp_path):
    ok = png(tmp_path / "ok.png")
    refs = [ImageRef(str(tmp_path / "gone1.png"), 16, 12, "a.json, image id 1"),
            ImageRef(ok, 16, 12, "a.json, image id 2"),
            ImageRef(str(tmp_path / "gone2.png"), 16, 12, "b.json, image id 9")]
    with pytest.raises(MissingImagesError) as err:
        check_images(refs)
    assert str(err.value) == (f"2 of 3 image file(s) missing on disk:\n"
                              f"  {tmp_path / 'gone1.png'} [a.json, image id 1]\n"
                              f"  {tmp_path / 'gone2.png'} [b.json, image id 9]")


def test_truncated_not_an_image_and_wrong_size_are_all_reported(tmp_path):
    whole = tmp_path / "whole.png"
    Image.effect_noise((40, 30), 60).convert("RGB").save(whole)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    text = tmp_path / "text.png"
    text.write_text("not an image")
    refs = [ImageRef(str(truncated), 40, 30, "a.json, image id 1"),
            ImageRef(str(text), 40, 30, "a.json, image id 2"),
            ImageRef(str(whole), 30, 40, "a.json, image id 3"),   # declared transposed
            ImageRef(str(whole), 40, 30, "a.json, image id 4")]   # fine
    with pytest.raises(ImageCheckError) as err:
        check_images(refs, workers=2)
    assert str(err.value).splitlines() == [
        "3 of 4 image(s) failed the check:",
        f"  {truncated}: cannot decode: image file is truncated [a.json, image id 1]",
        f"  {text}: not a readable image [a.json, image id 2]",
        f"  {whole}: decoded size 40x30 (after EXIF rotation) differs from the declared "
        "width x height 30x40 [a.json, image id 3]"]


@pytest.mark.parametrize("orientation, declared_ok", [(1, (64, 48)), (6, (48, 64)), (8, (48, 64))])
def test_size_is_checked_after_exif_rotation(tmp_path, orientation, declared_ok):
    """A 64x48 JPEG with EXIF orientation 6/8 (90 degree rotations) displays as 48x64."""
    path = tmp_path / "rotated.jpg"
    exif = Image.Exif()
    exif[0x0112] = orientation
    Image.new("RGB", (64, 48), (90, 90, 90)).save(path, exif=exif.tobytes())
    w, h = declared_ok
    check_images([ImageRef(str(path), w, h, "x")])   # passes
    with pytest.raises(ImageCheckError, match=f"decoded size {w}x{h} .* declared width x height "
                                              f"{h}x{w}"):
        check_images([ImageRef(str(path), h, w, "x")])
