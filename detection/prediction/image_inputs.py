"""Images to predict, without a COCO file: a folder, a list file or glob patterns.

``collect_images`` gathers the files; ``read_images`` reads each one fully (in threads) to
get its size after EXIF rotation (``taxdet.datasets.images.decoded_size``, the loader's
orientation) and turns the readable ones into COCO image records (ids 1..N in file
order). Unreadable, truncated or oversized images are skipped and returned as problems;
``NoReadableImagesError`` only when none is left. ``check_files`` is that check alone (also
for ``evaluate.py --checkpoint``'s ground truth and ``evaluate_classifier.py --ood``), and
``warn_skipped`` the one warning that counts the skipped images.

``file_name`` is always relative, to the folder the images are under (``ImageSet.base``):
``--images DIR`` (searched recursively, sub-folders kept); the list file's folder, for a list
of relative paths (else the deepest folder holding every listed image); for glob patterns,
the folder before the first wildcard (``data/imgs/**/*.png`` -> ``data/imgs``; several
patterns: their common folder). So a customer's own ``file_name`` values match.
"""

from __future__ import annotations

import glob
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError
from tqdm import tqdm

from taxdet.core.errors import ConfigError, InputError, InputNotFoundError
from taxdet.datasets.images import ImageReadError, check_pixel_limit, decoded_size

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")  # PIL and OpenCV
MAX_LISTED = 20  # skipped images named in the warning
logger = logging.getLogger(__name__)


class NoReadableImagesError(InputError, ValueError):
    """None of the images given can be read."""


@dataclass
class ImageSet:
    """COCO image records (``id``, ``file_name``, ``width``, ``height``), the folder their
    file names are relative to (None: as given), and the problems of skipped images."""

    images: list[dict]
    base: Path | None
    skipped: list[str] = field(default_factory=list)


def is_image(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def folder_images(folder: str | Path) -> list[str]:
    """Image files under ``folder`` (recursive, hidden ones skipped), relative, sorted."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputNotFoundError(f"--images {folder}: folder not found")
    names = sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*")
                   if is_image(p) and p.is_file()
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not names:
        raise InputNotFoundError(f"--images {folder}: no image files ({', '.join(IMAGE_SUFFIXES)})"
                                 " in it or its subfolders")
    return names


def list_images(list_file: str | Path) -> list[str]:
    """Paths of a text file, one a line (blank lines and ``#`` comments skipped)."""
    list_file = Path(list_file)
    try:
        lines = list_file.read_text().splitlines()
    except FileNotFoundError:
        raise InputNotFoundError(f"--image-list {list_file}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"--image-list {list_file}: cannot read it ({exc})") from None
    names = [s for line in lines if (s := line.strip()) and not s.startswith("#")]
    if not names:
        raise ConfigError(f"--image-list {list_file}: lists no image")
    return list(dict.fromkeys(names))


def glob_images(patterns: list[str]) -> list[str]:
    """Files matched by each pattern (``**`` recursive), in pattern order then sorted; a
    pattern matching no image is an error naming it."""
    names: list[str] = []
    for pattern in patterns:
        found = sorted(p for p in glob.glob(pattern, recursive=True)
                       if os.path.isfile(p) and (is_image(Path(p)) or not glob.has_magic(pattern)))
        if not found:
            raise InputNotFoundError(f"{pattern}: matches no image file")
        names += found
    return list(dict.fromkeys(names))


def image_problem(path: Path) -> tuple[tuple[int, int] | None, str | None]:
    """((width, height) after EXIF rotation, None) or (None, why it cannot be used)."""
    try:
        check_pixel_limit(str(path), "image")
        data = path.read_bytes()
        return decoded_size(data), None
    except ImageReadError as exc:
        return None, str(exc).removeprefix("image: ")
    except FileNotFoundError:
        return None, f"{path}: not found"
    except UnidentifiedImageError:
        return None, f"{path}: not a readable image"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return None, f"{path}: cannot decode ({exc})"


def check_files(paths: list[Path], workers: int = 4, progress: bool = False
                ) -> list[tuple[tuple[int, int] | None, str | None]]:
    """``image_problem`` of every path, in order, read in ``workers`` threads."""
    with ThreadPoolExecutor(max(1, workers)) as pool:
        return list(tqdm(pool.map(image_problem, paths), total=len(paths), unit="img",
                         desc="read sizes", disable=not progress))


def warn_skipped(skipped: list[str], total: int, log: logging.Logger = logger) -> None:
    """One warning counting the ``skipped`` images (their problems) of ``total``, naming up to
    ``MAX_LISTED`` of them; nothing when none was skipped."""
    if skipped:
        listed = "\n  ".join(skipped[:MAX_LISTED])
        more = len(skipped) - MAX_LISTED
        log.warning(f"{len(skipped)} of {total} images skipped (unreadable):\n  "
                    f"{listed}" + (f"\n  ... and {more} more" if more > 0 else ""))


def read_images(names: list[str], base: Path | None, workers: int = 4,
                progress: bool = True) -> ImageSet:
    """Image records of the readable ``names`` (relative to ``base``); see the module doc."""
    paths = [Path(n) if base is None else base / n for n in names]
    checked = check_files(paths, workers, progress)
    images, skipped = [], []
    for name, (size, problem) in zip(names, checked):
        if problem:
            skipped.append(problem)
        else:
            images.append({"id": len(images) + 1, "file_name": name, "width": size[0],
                           "height": size[1]})
    if not images:
        listed = "\n  ".join(skipped[:20])
        raise NoReadableImagesError(f"none of the {len(names)} images can be read:\n  {listed}")
    return ImageSet(images, base, skipped)


def pattern_root(pattern: str) -> str:
    """The folder of a glob pattern before its first wildcard (a plain path: its folder)."""
    parts = Path(pattern).parts
    first = next((i for i, part in enumerate(parts) if glob.has_magic(part)), len(parts) - 1)
    fixed = parts[:first]
    return os.path.abspath(os.path.join(*fixed)) if fixed else os.path.abspath(".")


def relative_to_root(paths: list[str], roots: list[str]) -> tuple[list[str], Path]:
    """(``paths`` relative to the common folder of ``roots``, in posix form; that folder)."""
    base = os.path.commonpath([os.path.abspath(r) for r in roots])
    return [Path(os.path.relpath(os.path.abspath(p), base)).as_posix() for p in paths], Path(base)


def list_names(image_list: Path) -> tuple[list[str], Path]:
    """A list file's paths relative to its folder when all are below it, else to the deepest
    folder holding every one."""
    names = list_images(image_list)
    if all(not os.path.isabs(n) and ".." not in Path(n).parts for n in names):
        return names, image_list.parent
    files = [os.path.join(image_list.parent, n) for n in names]
    return relative_to_root(files, [os.path.dirname(os.path.abspath(f)) for f in files])


def find_images(images_dir: str | Path | None = None, image_list: str | Path | None = None,
                patterns: list[str] | None = None) -> tuple[list[str], Path]:
    """(relative file names, the folder they are relative to) of exactly one source: a
    folder, a list file or glob patterns (module docstring). Nothing is read yet."""
    given = [s for s in (images_dir, image_list, patterns) if s]
    if len(given) != 1:
        raise ConfigError("give exactly one of --images DIR, --image-list FILE or image paths")
    if images_dir:
        return folder_images(images_dir), Path(images_dir)
    if image_list:
        return list_names(Path(image_list))
    patterns = list(patterns or [])
    return relative_to_root(glob_images(patterns), [pattern_root(p) for p in patterns])


def collect_images(images_dir: str | Path | None = None, image_list: str | Path | None = None,
                   patterns: list[str] | None = None, workers: int = 4,
                   progress: bool = True) -> ImageSet:
    """``find_images`` then ``read_images``."""
    names, base = find_images(images_dir, image_list, patterns)
    return read_images(names, base, workers, progress)
