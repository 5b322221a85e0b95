"""Build build/typecheck/taxdet/...: the installed import names as a tree of file symlinks.

setup.cfg's ``package_dir`` maps ``taxdet.<name>`` to the repository's folders (``taxdet.core`` is
``supertax/core``). mypy cannot run the editable install's import hook, and grimp (import-linter)
would see ``supertax/core`` twice (as ``taxdet.core`` and ``taxdet.supertax.core``). Both read this
tree instead: one real directory per package of ``packages``, holding symlinks to that package's
own files only, so every module has exactly one name. Usage: ``python .ci/import_tree.py [DEST]``.
"""

from __future__ import annotations

import configparser
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip()]


def package_folders(setup_cfg: Path) -> dict[str, Path]:
    """Every package of setup.cfg's ``packages`` -> its folder (longest ``package_dir`` prefix)."""
    parser = configparser.ConfigParser()
    parser.read(setup_cfg)
    options = parser["options"]
    mapping = dict(line.split("=", 1) for line in _lines(options["package_dir"]))
    mapping = {name.strip(): folder.strip() for name, folder in mapping.items()}
    folders = {}
    for package in _lines(options["packages"]):
        prefix = max((name for name in mapping if package == name or
                      package.startswith(name + ".")), key=len)
        rest = package[len(prefix):].lstrip(".").replace(".", "/")
        folders[package] = ROOT / mapping[prefix] / rest
    return folders


def build(dest: Path) -> None:
    """Recreate ``dest`` with one directory per package and symlinks to its ``*.py`` files."""
    shutil.rmtree(dest, ignore_errors=True)
    for package, folder in package_folders(ROOT / "setup.cfg").items():
        target = dest.joinpath(*package.split("."))
        target.mkdir(parents=True, exist_ok=True)
        for source in sorted(folder.glob("*.py")) + sorted(folder.glob("py.typed")):
            (target / source.name).symlink_to(source)


if __name__ == "__main__":
    build(Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "build" / "typecheck")
