"""Check image files before training: present, decodable, complete, of the declared size.

Each file is read once: the same bytes are hashed (content hash, for duplicate
detection and the stable split) and fully decoded with PIL (so truncated files
fail here, not in a data-loader worker mid-epoch).
"""

from __future__ import annotations

import hashlib
import io
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from PIL import Image, UnidentifiedImageError

from datasets.coco_io import DatasetError

EXIF_ORIENTATION = 0x0112
SWAPS_AXES = {5, 6, 7, 8}  # EXIF orientations that rotate by 90 or 270 degrees


class MissingImagesError(DatasetError, FileNotFoundError):
    """Image files named by the annotations are not on disk (all of them listed)."""


class ImageCheckError(DatasetError, ValueError):
    """Images that cannot be decoded, are truncated, or differ from their declared size."""


class ImageReadError(DatasetError, OSError):
    """An image file that cannot be opened or decoded while loading a batch."""


@dataclass(frozen=True)
class ImageRef:
    """An image to check: its path, the declared size, and where it was declared."""

    path: str
    width: int
    height: int
    where: str  # e.g. "annotations.json, image id 5"


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
    if (w, h) != (ref.width, ref.height):
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
