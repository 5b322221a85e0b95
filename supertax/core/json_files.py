"""Read JSON files within limits: the one JSON reader of every tool.

Limits on hostile files (``load_json``):

* size: a JSON file larger than ``TAXDET_MAX_JSON_BYTES`` bytes (environment variable;
  default 2 GiB = 2147483648) is refused before it is read; a pipe is read up to that
  limit; other non-regular files (``/dev/zero``, sockets) are refused;
* nesting: JSON nested deeper than Python's recursion limit (about 1000 levels; COCO
  needs 5) is refused instead of failing with a ``RecursionError``;
* duplicate keys: an object that names one key twice (``{"images": [], "images": [...]}``)
  is refused naming the key, where ``json`` would silently keep the last.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import IO, Any

from taxdet.core.errors import ConfigError, InputError

MAX_JSON_BYTES_ENV = "TAXDET_MAX_JSON_BYTES"
DEFAULT_MAX_JSON_BYTES = 2 * 1024 ** 3
READ_CHUNK = 1 << 20  # bytes read at a time from a pipe


class FileFormatError(InputError):
    """A file that cannot be read or parsed; subclasses name what kind of file it is."""

    not_found = "{path}: {what} not found"  # message for a missing file (``load_json``)


def max_json_bytes() -> int:
    """The size limit of JSON files: ``TAXDET_MAX_JSON_BYTES`` or 2 GiB."""
    raw = os.environ.get(MAX_JSON_BYTES_ENV, "").strip()
    if not raw:
        return DEFAULT_MAX_JSON_BYTES
    if not raw.isdigit() or int(raw) <= 0:
        raise ConfigError(f"environment variable {MAX_JSON_BYTES_ENV}={raw!r}: must be a "
                          "positive number of bytes")
    return int(raw)


def _read_limited(f: IO[bytes], path: str, what: str, error: type[FileFormatError]) -> bytes:
    """The whole file, refusing more than ``max_json_bytes()`` and non-regular files other
    than pipes (a device like ``/dev/zero`` never ends)."""
    limit, info = max_json_bytes(), os.fstat(f.fileno())
    too_big = error(f"{path}: {what} is larger than the limit of {limit} bytes "
                    f"(set {MAX_JSON_BYTES_ENV} to raise it)")
    if stat.S_ISREG(info.st_mode):
        if info.st_size > limit:
            raise too_big
        return f.read()
    if not stat.S_ISFIFO(info.st_mode):
        raise error(f"{path}: {what} is not a regular file")
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = f.read(min(READ_CHUNK, limit + 1 - total))
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        total += len(chunk)
    raise too_big


class _DuplicateKey(Exception):
    """Raised from inside the parser by ``_unique_keys``; ``args[0]`` is the key."""


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``object_pairs_hook`` of ``json.loads``: the object as a dict, or ``_DuplicateKey``."""
    obj = dict(pairs)
    if len(obj) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return obj


def load_json(path: str | Path, what: str = "JSON file",
              error: type[FileFormatError] = FileFormatError) -> Any:
    """Parse a JSON file; errors (``error``) name the file (and line/column for syntax errors)
    and refuse files over the size or nesting limits (module docstring)."""
    try:
        with open(path, "rb") as f:
            raw = _read_limited(f, str(path), what, error)
    except FileNotFoundError:
        raise error(error.not_found.format(path=path, what=what)) from None
    except OSError as exc:
        raise error(f"{path}: cannot read {what}: {exc.strerror or exc}") from None
    try:
        return json.loads(raw, object_pairs_hook=_unique_keys)
    except _DuplicateKey as exc:
        raise error(f"{path}: the key {exc.args[0]!r} appears twice in one JSON object "
                    "(a JSON reader would silently keep only the last)") from None
    except json.JSONDecodeError as exc:
        raise error(f"{path}: not valid JSON: {exc.msg} at line {exc.lineno} "
                    f"column {exc.colno}") from None
    except UnicodeDecodeError as exc:
        raise error(f"{path}: not valid JSON: not UTF-8 text ({exc.reason} at byte "
                    f"{exc.start})") from None
    except RecursionError:
        raise error(f"{path}: JSON nested too deeply (the limit is about "
                    "1000 levels of lists and objects)") from None


def json_source(src: Any, what: str, error: type[FileFormatError] = FileFormatError
                ) -> tuple[Any, str]:
    """(parsed object, name for messages) from a path (``load_json`` of the ``<what> file``)
    or an already parsed object (named ``<what>``)."""
    if isinstance(src, (str, Path)):
        return load_json(src, f"{what} file", error), str(src)
    return src, f"<{what}>"
