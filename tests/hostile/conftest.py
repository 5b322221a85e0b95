"""Hostile and broken inputs: every case must exit 1 (or raise an ``InputError``) with a message
naming the file, and leave the disk exactly as it was.

Fixtures:

* ``run_tool(name, *argv)`` runs ``tools/<name>.py``'s ``main`` in-process and returns
  ``(exit code, stdout, stderr)``; ``SystemExit`` (argparse) becomes its code.
* ``snapshot(*paths)`` records every file under the paths (size, mtime, SHA-256);
  ``snapshot.unchanged()`` asserts none was changed, added or removed since.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import io
from pathlib import Path

import pytest

from tests.paths import REPO
_TOOLS: dict[str, object] = {}


def _tool(name: str):
    if name not in _TOOLS:
        spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _TOOLS[name] = module
    return _TOOLS[name]


@pytest.fixture
def run_tool():
    def run(name: str, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = _tool(name).main([str(a) for a in argv])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
        return code, out.getvalue(), err.getvalue()
    return run


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
