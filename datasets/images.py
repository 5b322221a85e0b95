"""Image files of COCO records: where they are, and whether they are usable.

* ``read_ground_truth`` + ``image_files``: a COCO file's (or dict's) image records and their
  files (``file_name`` relative to an images folder), every missing file listed at once;
* ``check_images``: before training, each file is read once: the same bytes are hashed
  (content hash, for duplicate detection and the stable split) and fully decoded with PIL
  (so truncated files fail here, not in a data-loader worker mid-epoch).
"""

from __future__ import annotations

import hashlib
import io
import os
import warnings
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from taxdet.core.json_files import json_source
from taxdet.datasets.coco_io import (
    CocoFormatError,
    DatasetError,
    check_positive_int,
    coco_sections,
    column,
    unique_ids,
)

EXIF_ORIENTATION = 0x0112
SWAPS_AXES = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 or 270 degrees
MAX_LISTED = 20  # missing files named in one error
MAX_IMAGE_PIXELS = 178_956_970  # where PIL refuses a decompression bomb (2x its warning limit)


class MissingImagesError(DatasetError, FileNotFoundError):
    """Image files named by the annotations are not on disk (all of them listed)."""


class ImageCheckError(DatasetError, ValueError):
    """Images that cannot be decoded, are truncated, or differ from their declared size."""


class ImageReadError(DatasetError, OSError):
    """An image file that cannot be opened or decoded while loading a batch."""


@dataclass(frozen=True)
class ImageRef:
    """An image to check: its path, the declared size (None: not declared, not checked), and
    where it was declared."""

    path: str
    width: int | None
    height: int | None
    where: str  # e.g. "annotations.json, image id 5"


def check_pixel_limit(path: str, where: str) -> None:
    """Raise ``ImageReadError`` when the image header of ``path`` declares more than
    ``MAX_IMAGE_PIXELS`` (decoding it would need gigabytes); files PIL cannot identify pass
    (their decoder reports them)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                w, h = img.size
    except Image.DecompressionBombError as exc:
        raise ImageReadError(f"{where}: {path}: image too large to decode ({exc})") from None
    except (OSError, SyntaxError, ValueError):
        return
    if w * h > MAX_IMAGE_PIXELS:
        raise ImageReadError(f"{where}: {path}: image too large to decode ({w}x{h} = {w * h} "
                             f"pixels, the limit is {MAX_IMAGE_PIXELS})")


def content_hash(data: bytes) -> str:
    """Hex digest identifying an image by its bytes (sha1: fast, and collisions are not a threat
    model here)."""
    return hashlib.sha1(data).hexdigest()


def decoded_size(data: bytes) -> tuple[int, int]:
    """(width, height) after EXIF rotation; raises ``OSError`` / ``UnidentifiedImageError``
    for files PIL cannot fully decode (truncated ones included)."""
    with Image.open(io.BytesIO(data)) as img:
        img.load()
        w, h = img.size
        if img.getexif().get(EXIF_ORIENTATION) in SWAPS_AXES:
            w, h = h, w
    return w, h


def inspect(ref: ImageRef) -> tuple[str, str | None]:
    """(content hash, problem or None) for one present file."""
    try:
        with open(ref.path, "rb") as f:
            data = f.read()
    except OSError as exc:
        return "", f"{ref.path}: cannot read ({exc.strerror or exc}) [{ref.where}]"
    digest = content_hash(data)
    try:
        w, h = decoded_size(data)
    except UnidentifiedImageError:
        return digest, f"{ref.path}: not a readable image [{ref.where}]"
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        return digest, f"{ref.path}: cannot decode: {exc} [{ref.where}]"
    if ref.width is not None and (w, h) != (ref.width, ref.height):
        return digest, (f"{ref.path}: decoded size {w}x{h} (after EXIF rotation) differs from "
                        f"the declared width x height {ref.width}x{ref.height} [{ref.where}]")
    return digest, None


def require_present(refs: list[ImageRef]) -> None:
    """Raise ``MissingImagesError`` listing EVERY missing file at once."""
    missing = [r for r in refs if not os.path.isfile(r.path)]
    if missing:
        lines = "\n".join(f"  {r.path} [{r.where}]" for r in missing)
        raise MissingImagesError(f"{len(missing)} of {len(refs)} image file(s) missing on disk:\n"
                                 f"{lines}")


def check_images(refs: list[ImageRef], workers: int = 4) -> list[str]:
    """Content hash of every image, in ``refs`` order.

    Raises ``MissingImagesError`` (all missing files) before decoding anything,
    then ``ImageCheckError`` listing every unreadable, truncated or mis-sized image.
    Decoding runs in ``workers`` threads (PIL and hashlib release the GIL).
    """
    require_present(refs)
    with ThreadPoolExecutor(max(1, workers)) as pool:
        results = list(pool.map(inspect, refs))
    problems = [p for _, p in results if p]
    if problems:
        raise ImageCheckError(f"{len(problems)} of {len(refs)} image(s) failed the check:\n  "
                              + "\n  ".join(problems))
    return [digest for digest, _ in results]


def read_ground_truth(gt: dict | str | Path, images_dir: str | Path | None
                      ) -> tuple[dict, Path | None, str]:
    """(COCO dict, folder its file names are relative to, name for messages).

    The image records are checked (``taxdet.datasets.coco_io``: unique integer ids, positive integer
    ``width``/``height``). The folder is ``images_dir``, else the ground-truth file's folder;
    for an in-memory dict without ``images_dir``, None (file names are used as they are).
    """
    raw, source = json_source(gt, "ground truth", CocoFormatError)
    images = coco_sections(source, raw)[0]
    unique_ids(source, "images", images)
    for key in ("width", "height"):
        column(source, "images", images, key, check_positive_int, "i", positive=True)
    if images_dir is None and isinstance(gt, (str, Path)):
        images_dir = Path(gt).parent
    return raw, (Path(images_dir) if images_dir is not None else None), source


def _image_path(name, base: Path | None) -> tuple[Path | None, str | None]:
    """(path of ``file_name`` ``name``, why it is not a file or None)."""
    if not name:
        return None, "no file_name"
    if not isinstance(name, str):
        return None, f"file_name {name!r} is not a string"
    path = Path(name) if base is None else base / name
    return path, None if path.is_file() else str(path)


def image_files(images: list[dict], base: Path | None, source: str) -> list[str]:
    """The file of each COCO image record (absolute ``file_name``, or relative to ``base``).

    Raises ``MissingImagesError`` listing every missing file at once.
    """
    files, missing = [], []
    for img in images:
        path, problem = _image_path(img.get("file_name"), base)
        if problem:
            missing.append(f"image id {img.get('id')}: {problem}")
        files.append(str(path))
    if missing:
        where = f"relative to {base}" if base is not None else "as given"
        listed = "\n  ".join(missing[:MAX_LISTED])
        more = f"\n  ... and {len(missing) - MAX_LISTED} more" if len(missing) > MAX_LISTED else ""
        raise MissingImagesError(f"{source}: {len(missing)} of {len(images)} image files not found "
                                 f"(file_name {where}; pass --images DIR to look elsewhere):\n  "
                                 f"{listed}{more}")
    return files
