"""Which files a tool wrote: the output manifest ``.taxdet-outputs.json`` of a folder.

The one documented mechanism by which a tool recognises its own earlier output. When a tool
has checked its outputs (``taxdet.core.files.check_outputs(..., tool=...)``), every one of
them that it then writes (through ``taxdet.core.files.atomic_open``) is recorded in the
manifest of the folder it lies in::

    {"format": 1, "files": {"eval.json": {"tool": "evaluate", "kind": "--json",
                                          "sha256": "..."}}}

An existing file at an output path may be replaced without ``--overwrite`` only when the
manifest records it for the same tool and kind (output flag) *and* its content still has the
recorded SHA-256: a file the user put there, or edited since, is never replaced silently. The
manifest is written atomically; losing it (a copied folder) only means ``--overwrite`` is
needed once.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

MANIFEST = ".taxdet-outputs.json"
FORMAT = 1

_planned: dict[Path, tuple[str, str]] = {}   # resolved output path -> (tool, kind)


def file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _read_manifest(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError, RecursionError):
        return {}
    files = data.get("files") if isinstance(data, dict) else None
    return files if isinstance(files, dict) else {}


def owner(path: Path) -> tuple[str, str] | None:
    """``(tool, kind)`` that wrote ``path``, when the manifest records it and its content is
    unchanged since; else None."""
    entry = _read_manifest(path.parent).get(path.name)
    if not isinstance(entry, dict) or not path.is_file():
        return None
    try:
        same = entry.get("sha256") == file_sha256(path)
    except OSError:
        return None
    return (str(entry.get("tool")), str(entry.get("kind"))) if same else None


def plan(tool: str, outputs: dict[Path, str]) -> None:
    """Remember that ``tool`` is about to write ``outputs`` (resolved path -> kind); a new
    tool's plan replaces the previous tool's."""
    if any(t != tool for t, _ in _planned.values()):
        _planned.clear()
    _planned.update({path: (tool, kind) for path, kind in outputs.items()})


def _write_manifest(folder: Path, files: dict[str, Any]) -> None:
    if not files:
        (folder / MANIFEST).unlink(missing_ok=True)
        return
    text = json.dumps({"format": FORMAT, "files": files}, indent=1, sort_keys=True)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{MANIFEST}.", suffix=".tmp", dir=folder)
    except OSError:  # a folder we may write outputs into but not the manifest: no ownership
        return
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.replace(tmp, folder / MANIFEST)
    except OSError:
        Path(tmp).unlink(missing_ok=True)


def forget(path: Path) -> None:
    """Drop ``path`` from its folder's manifest (the file was removed)."""
    resolved = path.resolve()
    files = _read_manifest(resolved.parent)
    if files.pop(resolved.name, None) is not None:
        _write_manifest(resolved.parent, files)


def record(path: Path) -> None:
    """After ``path`` was written: note it in its folder's manifest when it was planned."""
    resolved = path.resolve()
    if resolved not in _planned:
        return
    tool, kind = _planned[resolved]
    folder = resolved.parent
    files = _read_manifest(folder)
    files[resolved.name] = {"tool": tool, "kind": kind, "sha256": file_sha256(resolved)}
    _write_manifest(folder, files)
