"""Safe file output: atomic writes, outputs that never overwrite inputs, leftovers of killed writes.

Every file the toolkit writes goes through ``atomic_open`` / ``write_atomic``: the data goes to
a temporary file ``.<name>.<random>.tmp`` in the destination folder, is flushed and fsynced,
then renamed over the destination. A kill at any moment leaves the old file or the new one,
never a truncated one; ``remove_stale_temps`` deletes what a killed write left behind.

``check_outputs`` is the one output rule of every tool, checked before anything is written. It
refuses an output path that is one of the command's inputs (every file it reads; same resolved
path, or the same file through another name: same device and inode), two outputs that are the
same file, an output that is an existing folder, lies under a file or in a folder that cannot
be written, a drawing folder that is an input folder, and an existing file that is not the
tool's own earlier output of the same kind (``taxdet.core.output_owner``) unless
``--overwrite`` is given. Problems raise ``OutputError`` (an ``InputError``) naming the path.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, Any

from taxdet.core import output_owner
from taxdet.core.errors import OutputError

TMP_SUFFIX = ".tmp"
_TEMP_NAME = re.compile(r"\.(.+)\.[a-z0-9_]+\.tmp")  # mkstemp(prefix=".<name>.")


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of an existing file, else None."""
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_dev, st.st_ino


IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"})


def check_outputs(outputs: dict[str, str | Path | None], inputs: Iterable[str | Path], *,
                  tool: str | None = None, overwrite: bool = False,
                  drawings: dict[str, str | Path | None] | None = None,
                  input_folders: Iterable[str | Path] = ()) -> None:
    """The one output rule of every tool, checked before anything is written.

    ``outputs``: ``{"--out": path}`` (None entries skipped; a ``"--draw (a.png)"`` key is of
    kind ``--draw``). ``inputs``: every file the tool reads. Refused: an output that is an input
    (also with ``overwrite``), two outputs that are the same file, an output that is a folder,
    lies under a file or in a folder that cannot be written. With ``tool``: an existing output
    file is replaced only with ``overwrite`` or when it is ``tool``'s own earlier output of the
    same kind (``taxdet.core.output_owner``); the outputs are then recorded as they are
    written. ``drawings``: ``{"--draw": folder}``, refused when the folder is an input folder
    (one of ``input_folders``, or under it, or the folder of an input image)."""
    draw = {f: Path(d) for f, d in (drawings or {}).items() if d is not None}
    inputs = list(inputs) if draw else inputs  # else read lazily: only when an output exists
    given = {flag: Path(p) for flag, p in outputs.items() if p is not None}
    resolved = _distinct(given)
    _check_not_inputs(given, resolved, inputs)
    _check_drawings(draw, inputs, input_folders)
    if tool is not None:
        _check_owned(given, tool, overwrite)
        output_owner.plan(tool, {resolved[f]: _kind(f) for f in given})


def _kind(flag: str) -> str:
    return flag.split(" (", 1)[0]


def _distinct(given: dict[str, Path]) -> dict[str, Path]:
    """Resolved path per flag; ``OutputError`` for two flags naming one file or a path that
    cannot be a written file."""
    seen: dict[Path, str] = {}
    for flag, path in given.items():
        resolved = path.resolve()
        if resolved in seen:
            raise OutputError(f"{flag} {path}: the same file as {seen[resolved]}; give each "
                              "output its own path")
        seen[resolved] = flag
        if path.name == output_owner.MANIFEST:
            raise OutputError(f"{flag} {path}: the output manifest of its folder; give another "
                              "name")
        _check_writable_path(flag, path)
    return {flag: p for p, flag in seen.items()}


def _check_not_inputs(given: dict[str, Path], resolved: dict[str, Path],
                      inputs: Iterable[str | Path]) -> None:
    existing: dict[tuple[int, int], str] = {
        ident: flag for flag, p in resolved.items() if (ident := _identity(p))}
    if not existing:  # an output that does not exist yet cannot be an input
        return
    for src in inputs:
        owner = existing.get(_identity(Path(src)))  # type: ignore[arg-type]
        if owner is not None:
            raise OutputError(f"{owner} {given[owner]}: is an input of this command ({src}); "
                              "refusing to overwrite it")


def _check_owned(given: dict[str, Path], tool: str, overwrite: bool) -> None:
    """An existing output file: replaced only with ``overwrite`` or when ``tool`` wrote it as
    this kind of output and nobody changed it since."""
    if overwrite:
        return
    for flag, path in given.items():
        if not (path.exists() or path.is_symlink()):
            continue
        found = output_owner.owner(path.resolve())
        if found == (tool, _kind(flag)):
            continue
        by = f"it is {found[0]}'s {found[1]} output" if found else \
            f"{tool} did not write it"
        raise OutputError(f"{flag} {path}: already exists and {by}; refusing to replace it "
                          "(--overwrite replaces it)")


def _check_drawings(drawings: dict[str, Path], inputs: Iterable[str | Path],
                    input_folders: Iterable[str | Path]) -> None:
    """Drawings never go into an input folder (the next run would read them as images)."""
    if not drawings:
        return
    roots = [Path(f).resolve() for f in input_folders]
    image_dirs = {Path(p).resolve().parent for p in inputs
                  if Path(p).suffix.lower() in IMAGE_SUFFIXES}
    for flag, folder in drawings.items():
        if folder.exists() and not folder.is_dir():
            raise OutputError(f"{flag} {folder}: is a file; give a folder")
        _check_writable_path(flag, folder / "x")
        where = folder.resolve()
        inside = next((r for r in roots if where == r or r in where.parents), None)
        if inside is None and where in image_dirs:
            inside = where
        if inside is not None:
            raise OutputError(f"{flag} {folder}: is an input folder ({inside} holds the images "
                              "read); drawings never go there: give another folder")


def _check_writable_path(flag: str, path: Path) -> None:
    if path.is_dir():
        raise OutputError(f"{flag} {path}: is a folder; give a file path")
    for parent in path.parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{flag} {path}: {parent} is a file, not a folder")
            if not os.access(parent, os.W_OK | os.X_OK):
                raise OutputError(f"{flag} {path}: cannot write in {parent} (permission "
                                  "denied)")
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
        output_owner.record(path)
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


def images_under(folders: Iterable[str | Path]) -> Iterator[Path]:
    """Every image file below ``folders`` (inputs read as folders, e.g. ``--ood DIR``)."""
    for folder in folders:
        folder = Path(folder)
        if folder.is_dir():
            yield from (p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def taxonomy_inputs(taxset: Any) -> list[Path]:
    """Every file a ``TaxonomySet`` was read from: the YAML files and each data source's
    annotation file (image files come from the merged samples)."""
    taxonomies = [taxset.super, *taxset.taxonomies]
    files = [Path(t.path) for t in taxonomies if t.path]
    return files + [Path(d.annotations) for t in taxset.taxonomies for d in t.data]


def remove_stale_temps(folder: str | Path, names: Iterable[str] | None = None) -> list[Path]:
    """Delete the ``.<name>.<random>.tmp`` files that interrupted atomic writes left in
    ``folder`` (only of ``names`` when given); return them. Other files, such as a user's
    ``.notes.tmp``, are never touched."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    wanted = None if names is None else set(names)
    stale = []
    for p in folder.glob(f".*{TMP_SUFFIX}"):
        found = _TEMP_NAME.fullmatch(p.name)
        if found and p.is_file() and (wanted is None or found.group(1) in wanted):
            stale.append(p)
    for p in stale:
        p.unlink(missing_ok=True)
    return stale


def remove_output(path: str | Path) -> None:
    """Delete an output this run wrote (e.g. after a failed check) and its manifest entry."""
    path = Path(path)
    path.unlink(missing_ok=True)
    output_owner.forget(path)


def classification_inputs(taxset: Any) -> Iterator[Path]:
    """The classification data a ``TaxonomySet`` names: CSV files, then (lazily) every image
    below the data folders and the CSVs' folders."""
    sources = [c for t in taxset.taxonomies for c in t.classification]
    yield from (Path(c.path) for c in sources if c.kind == "csv")
    yield from images_under(Path(c.path) if c.kind != "csv" else Path(c.path).parent
                            for c in sources)
