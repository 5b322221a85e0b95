"""Hostile and broken inputs: every case must exit 1 (or raise an ``InputError``) with a message
naming the file, and leave the disk exactly as it was.

Fixtures:

* ``run_tool`` (from ``tests/conftest.py``) runs a CLI in-process;
* ``snapshot(*paths)`` records every file under the paths (size, mtime, SHA-256);
  ``snapshot.unchanged()`` asserts none was changed, added or removed since.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest


class Snapshot:
    def __init__(self, paths: tuple[Path, ...]):
        self.paths = paths
        self.before = self.take()

    def take(self) -> dict[str, tuple]:
        files = {}
        for root in self.paths:
            root = Path(root)
            found = [root] if root.is_file() else sorted(root.rglob("*")) if root.exists() else []
            for f in found:
                if f.is_file() and not f.is_symlink():
                    files[str(f)] = (f.stat().st_size, hashlib.sha256(f.read_bytes()).hexdigest())
        return files

    def unchanged(self) -> None:
        after = self.take()
        assert after == self.before, {
            "added": sorted(set(after) - set(self.before)),
            "removed": sorted(set(self.before) - set(after)),
            "changed": sorted(k for k in after if k in self.before and after[k] != self.before[k])}


@pytest.fixture
def snapshot():
    return lambda *paths: Snapshot(tuple(Path(p) for p in paths))
