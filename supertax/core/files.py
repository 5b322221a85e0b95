"""Safe file output: atomic writes, outputs that never overwrite inputs, leftovers of killed writes.

Every file the toolkit writes goes through ``atomic_open`` / ``write_atomic``: the data goes to
a temporary file ``.<name>.<random>.tmp`` in the destination folder, is flushed and fsynced,
then renamed over the destination. A kill at any moment leaves the old file or the new one,
never a truncated one; ``remove_stale_temps`` deletes what a killed write left behind.

``check_outputs`` refuses an output path that is one of the command's inputs (same resolved
path, or the same file through another name: same device and inode), two outputs that are the
same file, an output that is an existing folder, and an output under a path that is a file.
Problems raise ``OutputError`` (an ``InputError``) naming the path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from taxdet.core.errors import OutputError

TMP_SUFFIX = ".tmp"


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, else None."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


def check_outputs(outputs: dict[str, str | Path | None], inputs: Iterable[str | Path]) -> None:
    """Refuse outputs (``{"--out": path}``; None entries are skipped) that would destroy an
    input, collide with each other, or cannot be files."""
    given = {flag: Path(p) for flag, p in outputs.items() if p is not None}
    seen: dict[Path, str] = {}
    for flag, path in given.items():
        resolved = path.resolve()
        if resolved in seen:
            raise OutputError(f"{flag} {path}: the same file as {seen[resolved]}; give each "
                              "output its own path")
        seen[resolved] = flag
        _check_writable_path(flag, path)
    existing: dict[tuple[int, int] | None, str] = {
        ident: flag for p, flag in seen.items() if (ident := _identity(p))}
    if not existing:  # an output that does not exist yet cannot be an input
        return
    for src in inputs:
        owner = existing.get(_identity(Path(src)))
        if owner is not None:
            raise OutputError(f"{owner} {given[owner]}: is an input of this command ({src}); "
                              "refusing to overwrite it")


def _check_writable_path(flag: str, path: Path) -> None:
    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a folder; give a file path")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{flag} {path}: {parent} is a file, not a folder")
            break


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path`` for writing; on success fsync and rename it over
    ``path``, on any error remove it. Folders are created; ``OutputError`` if impossible."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TMP_SUFFIX, dir=path.parent)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write here ({exc.strerror or exc})") from None
    try:
        with os.fdopen(fd, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    except BaseException as exc:
        Path(tmp).unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: str | Path, data: str | bytes) -> Path:
    """Write text or bytes to ``path`` atomically (see ``atomic_open``); return the path."""
    with atomic_open(path, "wb" if isinstance(data, bytes) else "w") as f:
        f.write(data)
    return Path(path)


def taxonomy_inputs(taxset: Any) -> list[Path]:
    """Every file a ``TaxonomySet`` was read from: the YAML files and each data source's
    annotation file (image files come from the merged samples)."""
    taxonomies = [taxset.super, *taxset.taxonomies]
    files = [Path(t.path) for t in taxonomies if t.path]
    return files + [Path(d.annotations) for t in taxset.taxonomies for d in t.data]


def remove_stale_temps(folder: str | Path) -> list[Path]:
    """Delete ``.<name>.*.tmp`` files an interrupted atomic write left in ``folder``; return
    them."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.glob(f".*{TMP_SUFFIX}") if p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
