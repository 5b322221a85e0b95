"""taxdet.detection.prediction.image_inputs: folders, list files and globs; sizes after EXIF
rotation; unreadable images skipped, none readable an error."""

from __future__ import annotations

import pytest
from PIL import Image

from taxdet.core.errors import ConfigError, InputError, InputNotFoundError
from taxdet.datasets.images import EXIF_ORIENTATION
from taxdet.detection.prediction.image_inputs import (
    NoReadableImagesError,
    collect_images,
    find_images,
    read_images,
)


def _png(path, size=(32, 24)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 20, 30)).save(path)
    return path


def test_folder_is_searched_recursively_and_keeps_relative_paths(tmp_path):
    _png(tmp_path / "b.png")
    _png(tmp_path / "sub" / "a.png", (40, 30))
    _png(tmp_path / ".hidden" / "c.png")
    (tmp_path / "notes.txt").write_text("not an image")
    got = collect_images(tmp_path, progress=False)
    assert [(i["id"], i["file_name"], i["width"], i["height"]) for i in got.images] == [
        (1, "b.png", 32, 24), (2, "sub/a.png", 40, 30)]
    assert got.base == tmp_path and got.skipped == []


def test_size_is_read_after_exif_rotation(tmp_path):
    img = Image.new("RGB", (60, 40), (200, 0, 0))
    exif = img.getexif()
    exif[EXIF_ORIENTATION] = 6  # rotate 90 degrees: 60x40 stored, 40x60 shown
    img.save(tmp_path / "rot.jpg", exif=exif)
    (image,) = collect_images(tmp_path, progress=False).images
    assert (image["width"], image["height"]) == (40, 60)


def test_unreadable_images_are_skipped_and_counted(tmp_path):
    _png(tmp_path / "good.png")
    (tmp_path / "garbage.jpg").write_bytes(b"not a jpeg at all")
    data = (_png(tmp_path / "cut.png", (64, 64))).read_bytes()
    (tmp_path / "cut.png").write_bytes(data[:len(data) // 2])
    got = collect_images(tmp_path, progress=False)
    assert [i["file_name"] for i in got.images] == ["good.png"]
    assert len(got.skipped) == 2
    assert any("garbage.jpg: not a readable image" in s for s in got.skipped)
    assert any("cut.png" in s for s in got.skipped)


def test_no_readable_image_is_an_input_error_listing_them(tmp_path):
    (tmp_path / "a.png").write_bytes(b"x")
    (tmp_path / "b.jpg").write_bytes(b"y")
    with pytest.raises(NoReadableImagesError, match="none of the 2 images can be read") as e:
        collect_images(tmp_path, progress=False)
    assert isinstance(e.value, InputError) and "a.png" in str(e.value)


def test_list_file_paths_are_relative_to_its_folder_and_missing_ones_skipped(tmp_path):
    _png(tmp_path / "imgs" / "x.png")
    (tmp_path / "list.txt").write_text("# images\nimgs/x.png\n\nimgs/gone.png\nimgs/x.png\n")
    names, base = find_images(image_list=tmp_path / "list.txt")
    assert names == ["imgs/x.png", "imgs/gone.png"] and base == tmp_path
    got = read_images(names, base, progress=False)
    assert [i["file_name"] for i in got.images] == ["imgs/x.png"]
    assert got.skipped == [f"{tmp_path / 'imgs/gone.png'}: not found"]


def test_glob_file_names_are_relative_to_the_folder_before_the_wildcard(tmp_path):
    _png(tmp_path / "d" / "1.png")
    _png(tmp_path / "d" / "e" / "2.png")
    names, base = find_images(patterns=[str(tmp_path / "d" / "**" / "*.png")])
    assert base == tmp_path / "d" and names == ["1.png", "e/2.png"]  # never absolute
    names, base = find_images(patterns=[str(tmp_path / "d" / "e" / "*.png"),
                                        str(tmp_path / "d" / "1.png")])
    assert base == tmp_path / "d" and names == ["e/2.png", "1.png"]


def test_a_list_of_absolute_paths_is_relative_to_their_common_folder(tmp_path):
    _png(tmp_path / "d" / "1.png")
    _png(tmp_path / "d" / "e" / "2.png")
    (tmp_path / "l").mkdir()
    (tmp_path / "l" / "list.txt").write_text(f"{tmp_path / 'd/e/2.png'}\n../d/1.png\n")
    names, base = find_images(image_list=tmp_path / "l" / "list.txt")
    assert base == tmp_path / "d" and names == ["e/2.png", "1.png"]
    with pytest.raises(InputNotFoundError, match="matches no image"):
        find_images(patterns=[str(tmp_path / "*.jpg")])


def test_bad_sources_are_input_errors(tmp_path):
    with pytest.raises(InputNotFoundError, match="folder not found"):
        find_images(tmp_path / "nope")
    with pytest.raises(InputNotFoundError, match="no image files"):
        find_images(tmp_path)
    with pytest.raises(ConfigError, match="exactly one"):
        find_images(tmp_path, tmp_path / "l.txt")
