"""Task images as Label Studio sends them, fetched within limits.

A task's image value is one of:

* ``/data/local-files/?d=REL``: a file Label Studio serves from its local-files root. With
  ``images_root`` it is read from ``images_root/REL``; otherwise fetched from Label Studio.
* ``/data/upload/REL``: a file uploaded to Label Studio. With ``images_root`` it is read from
  ``images_root/upload/REL`` (``images_root`` = Label Studio's media folder); otherwise fetched.
* ``http://`` / ``https://`` URLs: fetched. Label Studio's API key goes only to Label Studio's
  own origin (``--label-studio-url``), never to another host; redirects are not followed.

Anything else (``file://``, ``s3://``, bare paths, ...) is refused. A local path is resolved
(symbolic links and ``..`` included) and must stay inside ``images_root``. Downloads stop at
``max_bytes``; images declaring more than ``max_pixels`` are refused before decoding.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import parse_qs, unquote, urljoin, urlsplit

import cv2
import httpx
import numpy as np
from PIL import Image, UnidentifiedImageError

LOCAL_FILES, UPLOAD = "/data/local-files/", "/data/upload/"


class TaskError(Exception):
    """One task cannot be pre-labeled: an HTTP status and a message naming the task."""

    def __init__(self, status: int, message: str, task: object = None):
        super().__init__(message)
        self.status, self.message, self.task = status, message, task


@dataclass(frozen=True)
class FetchLimits:
    """Image limits: bytes downloaded or read, pixels declared, seconds per download."""

    max_bytes: int = 32 * 1024 * 1024
    max_pixels: int = 40_000_000
    timeout: float = 10.0


def auth_header(token: str | None) -> dict[str, str]:
    """Label Studio's header for ``token``: a legacy API key as ``Token KEY``, a personal access
    token (a JWT: three dot-separated parts) as ``Bearer TOKEN``."""
    if not token:
        return {}
    return {"Authorization": f"Bearer {token}" if token.count(".") == 2 else f"Token {token}"}


class ImageFetcher:
    """Reads a task's image bytes (module docstring). ``transport``: an httpx transport for
    tests."""

    def __init__(self, images_root: Path | None, label_studio_url: str | None,
                 label_studio_token: str | None, limits: FetchLimits = FetchLimits(),
                 transport: httpx.AsyncBaseTransport | None = None):
        self.root = images_root.resolve() if images_root else None
        self.ls_url, self.ls_token = label_studio_url, label_studio_token
        self.limits = limits
        self.transport = transport

    def set_label_studio(self, url: str | None, token: str | None) -> None:
        """What ``/setup`` sends (``hostname``, ``access_token``), used where flags gave none."""
        self.ls_url = self.ls_url or url or None
        self.ls_token = self.ls_token or token or None

    async def read(self, url: object) -> bytes:
        """The image bytes of one task value (``TaskError`` for every refusal)."""
        if not isinstance(url, str) or not url:
            raise TaskError(400, f"image value {url!r} is not a URL")
        parts = urlsplit(url)
        if parts.scheme in ("http", "https"):
            return await self._download(url)
        if parts.scheme or parts.netloc or not parts.path.startswith(("/data/",)):
            raise TaskError(400, f"{url!r}: unsupported URL (only http(s) and Label Studio's "
                                 f"{LOCAL_FILES}?d=... and {UPLOAD}... are read)")
        local = self._local_path(parts.path, parts.query, url)
        if local is not None:
            return self._read_file(local, url)
        if not self.ls_url:
            raise TaskError(400, f"{url!r}: a Label Studio path, but neither --images-root nor "
                                 "--label-studio-url (nor /setup's hostname) says where it is")
        return await self._download(urljoin(self.ls_url.rstrip("/") + "/", url.lstrip("/")))

    def _local_path(self, path: str, query: str, url: str) -> Path | None:
        """The file under ``root`` a Label Studio path names (None without a root)."""
        if self.root is None:
            return None
        if path == LOCAL_FILES or path == LOCAL_FILES.rstrip("/"):
            rel = parse_qs(query).get("d", [""])[0]
        elif path.startswith(UPLOAD):
            rel = "upload/" + unquote(path[len(UPLOAD):])
        else:
            raise TaskError(400, f"{url!r}: not a Label Studio file path ({LOCAL_FILES}?d=... "
                                 f"or {UPLOAD}...)")
        if not rel:
            raise TaskError(400, f"{url!r}: names no file")
        target = (self.root / rel.lstrip("/")).resolve()
        if not target.is_relative_to(self.root):
            raise TaskError(403, f"{url!r}: resolves outside --images-root")
        return target

    def _read_file(self, path: Path, url: str) -> bytes:
        if not path.is_file():
            raise TaskError(404, f"{url!r}: no such file under --images-root")
        if path.stat().st_size > self.limits.max_bytes:
            raise TaskError(413, f"{url!r}: {path.stat().st_size} bytes, more than the limit "
                                 f"of {self.limits.max_bytes}")
        return path.read_bytes()

    def _headers(self, url: str) -> dict[str, str]:
        if not self.ls_url:
            return {}
        ls, it = urlsplit(self.ls_url), urlsplit(url)
        same = (ls.scheme, ls.netloc) == (it.scheme, it.netloc)
        return auth_header(self.ls_token) if same else {}

    async def _download(self, url: str) -> bytes:
        """GET ``url`` with the limits (``TaskError`` 413 past ``max_bytes``, 424 when the
        server cannot be reached or answers an error)."""
        try:
            async with httpx.AsyncClient(transport=self.transport, timeout=self.limits.timeout,
                                         follow_redirects=False) as client:
                async with client.stream("GET", url, headers=self._headers(url)) as resp:
                    if resp.status_code != 200:
                        raise TaskError(424, f"{url!r}: the image server answered "
                                             f"{resp.status_code}")
                    return await self._body(resp, url)
        except httpx.HTTPError as exc:
            raise TaskError(424, f"{url!r}: cannot fetch ({type(exc).__name__}: {exc})") from None

    async def _body(self, resp: httpx.Response, url: str) -> bytes:
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.limits.max_bytes:
            raise TaskError(413, f"{url!r}: {declared} bytes, more than the limit of "
                                 f"{self.limits.max_bytes}")
        chunks, size = [], 0
        async for chunk in resp.aiter_bytes():
            size += len(chunk)
            if size > self.limits.max_bytes:
                raise TaskError(413, f"{url!r}: more than the limit of {self.limits.max_bytes} "
                                     "bytes")
            chunks.append(chunk)
        return b"".join(chunks)


def decode_rgb(data: bytes, max_pixels: int, what: str) -> np.ndarray:
    """[H, W, 3] uint8 RGB with EXIF orientation applied, as ``tools/predict.py`` reads files
    (OpenCV); ``TaskError`` 413 when the header declares more than ``max_pixels``, 422 when the
    bytes are not a decodable image."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as img:
                w, h = img.size
    except Image.DecompressionBombError:
        raise TaskError(413, f"{what}: image too large to decode") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise TaskError(422, f"{what}: not a readable image") from None
    if w * h > max_pixels:
        raise TaskError(413, f"{what}: {w}x{h} = {w * h} pixels, more than the limit of "
                             f"{max_pixels}")
    bgr = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise TaskError(422, f"{what}: not a readable image")
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
