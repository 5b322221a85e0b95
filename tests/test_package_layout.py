"""The repository's layout: unique module names, every package installed, every module documented,
every third-party import declared."""

from __future__ import annotations

import ast
import configparser
import re
import sys
from collections import Counter
from importlib.metadata import packages_distributions
from pathlib import Path

from tests.paths import REPO

PACKAGE_FOLDERS = ("supertax", "datasets", "losses", "detection", "tools")
SHARED_NAMES = {"__init__.py", "conftest.py"}
SKIPPED_DIRS = {".git", ".venv", "build", "data", "runs", "__pycache__"}
ARCHITECTURE = REPO / "docs" / "architecture.md"


def _walk_py(folder: Path) -> list[Path]:
    """``*.py`` under ``folder``, skipping environments, outputs, caches and hidden folders (but
    ``.ci``)."""
    out = []
    for path in sorted(folder.rglob("*.py")):
        parts = path.relative_to(REPO).parts[:-1]
        if any(p in SKIPPED_DIRS or p.endswith(".egg-info") or (p.startswith(".") and p != ".ci")
               for p in parts):
            continue
        out.append(path)
    return out


def _modules() -> list[Path]:
    """The library's module files (``__init__.py`` excepted)."""
    return [p for f in PACKAGE_FOLDERS for p in _walk_py(REPO / f) if p.name != "__init__.py"]


def _setup_options() -> tuple[dict[str, str], list[str]]:
    """setup.cfg's ``package_dir`` (import name -> folder) and ``packages``."""
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    lines = [line.strip() for line in parser["options"]["package_dir"].splitlines()]
    package_dir = dict(tuple(s.strip() for s in line.split("=", 1)) for line in lines if line)
    packages = [line.strip() for line in parser["options"]["packages"].splitlines()
                if line.strip()]
    return package_dir, packages


def test_module_file_names_are_unique():
    """No two module files in the repository share a name (``__init__.py``, ``conftest.py``
    excepted): a name says which module it is."""
    counts = Counter(p.name for p in _walk_py(REPO) if p.name not in SHARED_NAMES)
    duplicates = {name: [str(p.relative_to(REPO)) for p in _walk_py(REPO) if p.name == name]
                  for name, n in counts.items() if n > 1}
    assert not duplicates


def test_every_package_folder_is_installed():
    """Every folder with an ``__init__.py`` is in setup.cfg's ``package_dir`` and ``packages``;
    every listed package is such a folder."""
    package_dir, packages = _setup_options()
    folders = {str(p.parent.relative_to(REPO)) for f in PACKAGE_FOLDERS
               for p in _walk_py(REPO / f) if p.name == "__init__.py"}
    by_folder = {folder: name for name, folder in package_dir.items()}
    assert sorted(folders - set(by_folder)) == [], "folders missing from package_dir"
    assert sorted(by_folder[f] for f in folders if by_folder[f] not in packages) == [], \
        "package_dir entries missing from packages"
    assert sorted(set(package_dir) - set(packages)) == []
    assert sorted(set(package_dir.values()) - folders) == [], "listed folders without __init__.py"


def _documented_text() -> str:
    """docs/architecture.md without its old -> new module map (old names are not documentation)."""
    sections = re.split(r"(?m)^(?=## )", ARCHITECTURE.read_text(encoding="utf-8"))
    return "".join(s for s in sections if not s.lower().startswith("## old"))


def undocumented_modules() -> list[str]:
    """Modules whose file name appears in no code span of docs/architecture.md.

    A module counts as documented when a backticked path ending in its file name appears, e.g.
    `grid.py`, `anchors/grid.py` or `detection/anchors/grid.py`; file names are unique in the
    repository (``test_module_file_names_are_unique``), so the name alone identifies it.
    """
    spans = re.findall(r"`([^`\n]+)`", _documented_text())
    named = {re.split(r"[/\\]", span.strip())[-1] for span in spans}
    named |= {word for span in spans for word in re.findall(r"[\w.]+\.py\b", span)}
    return [str(p.relative_to(REPO)) for p in _modules() if p.name not in named]


def test_every_module_is_in_architecture_doc():
    """docs/architecture.md names every module of the library (``undocumented_modules``)."""
    assert undocumented_modules() == []


def _third_party_imports() -> dict[str, list[str]]:
    """Top-level names the library and tools import that are neither stdlib nor the project's,
    each with the files that import it."""
    found: dict[str, list[str]] = {}
    for path in _modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                # _typeshed: the type checkers' stdlib stubs, imported under TYPE_CHECKING only
                if top not in sys.stdlib_module_names and top not in ("taxdet", "tests",
                                                                      "benchmarks", "_typeshed"):
                    found.setdefault(top, []).append(str(path.relative_to(REPO)))
    return found


def _declared_distributions() -> set[str]:
    """Normalised names of setup.cfg's ``install_requires`` and every extra."""
    parser = configparser.ConfigParser()
    parser.read(REPO / "setup.cfg")
    text = parser["options"]["install_requires"] + "\n" + "\n".join(
        parser["options.extras_require"].values())
    names = [re.split(r"[<>=!~\[; ]", line.strip())[0] for line in text.splitlines()]
    return {re.sub(r"[-_.]+", "-", n).lower() for n in names if n and not n.startswith("#")}


def test_third_party_imports_are_declared():
    """Every third-party package the library imports (``cv2`` included) is installed by a
    requirement of setup.cfg (``install_requires`` or an extra)."""
    distributions = packages_distributions()
    declared = _declared_distributions()
    undeclared = {}
    for top, files in _third_party_imports().items():
        dists = {re.sub(r"[-_.]+", "-", d).lower() for d in distributions.get(top, [])}
        if not dists & declared:
            undeclared[top] = sorted(set(files))
    assert not undeclared
    assert "opencv-python-headless" in declared
