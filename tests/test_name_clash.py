"""The installed import names do not clash with popular top-level packages.

The folders ``datasets/``, ``losses/``, ``detection/`` and ``supertax/`` are imported as
``taxdet.<name>`` only, so a user with Hugging Face's ``datasets`` (or any other package of
those names) installed can use both in one environment.
"""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

from tests.coco_files import write_coco
from tests.paths import DRIVING, REPO

CLASHING = ("datasets", "losses", "detection", "supertax")
SOURCE_FOLDERS = ("supertax", "datasets", "losses", "detection", "tools", "benchmarks", "tests")

CHILD = textwrap.dedent("""
    import sys

    import datasets, detection, losses, supertax  # the fake top-level packages
    import taxdet.datasets, taxdet.detection, taxdet.losses, taxdet.supertax
    from taxdet.datasets.merge import merge
    from taxdet.supertax.taxset import load

    for fake, ours in [(datasets, taxdet.datasets), (losses, taxdet.losses),
                       (detection, taxdet.detection), (supertax, taxdet.supertax)]:
        assert fake.FAKE is True, fake
        assert fake is not ours and not hasattr(ours, "FAKE"), ours
    assert sys.modules["datasets"] is datasets
    dataset, report = merge(load(sys.argv[1]))
    print(len(dataset))
""")


def _fake_packages(root: Path) -> Path:
    """``root/fakes/<name>/__init__.py`` for every clashing name, each with ``FAKE = True``."""
    fakes = root / "fakes"
    for name in CLASHING:
        (fakes / name).mkdir(parents=True)
        (fakes / name / "__init__.py").write_text("FAKE = True\n")
    return fakes


def _taxonomies(root: Path) -> Path:
    """The driving super-taxonomy and one customer labeling two people in one image."""
    coco = write_coco(root, "customer_a", categories=["Human"], annotations=[
        {"image_id": 1, "category_id": 1, "bbox": [2, 3, 10, 12]},
        {"image_id": 1, "category_id": 1, "bbox": [20, 5, 8, 9]}])
    folder = root / "taxonomies"
    folder.mkdir()
    (folder / "driving.yaml").write_text((DRIVING / "driving.yaml").read_text())
    (folder / "customer_a.yaml").write_text(json.dumps({
        "kind": "taxonomy", "name": "customer_a", "super_taxonomy": "driving",
        "labels": [{"name": "Human", "maps_to": "person"}],
        "data": [{"annotations": str(coco.annotations), "images": str(coco.images)}]}))
    return folder


def test_fake_top_level_packages_do_not_shadow_ours(tmp_path):
    """A subprocess run outside the checkout, with ``datasets``, ``losses``, ``detection`` and
    ``supertax`` packages first on the path, imports both sets and merges a dataset."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(_fake_packages(tmp_path))] + [p for p in [env.get("PYTHONPATH")] if p])
    work = tmp_path / "work"
    work.mkdir()
    result = subprocess.run([sys.executable, "-c", CHILD, str(_taxonomies(tmp_path))],
                            cwd=work, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "1"


def _imported_modules(tree: ast.AST) -> list[tuple[int, str]]:
    """(line, absolute module name) of every import statement and ``import_module("…")``."""
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(
                node.func, "id", None)) in ("import_module", "__import__") and node.args
              and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            found.append((node.lineno, node.args[0].value))
    return found


def test_project_code_imports_only_taxdet_names():
    """No module of the project imports a bare ``datasets`` / ``losses`` / ``detection`` /
    ``supertax``: always ``taxdet.<name>``."""
    bare = []
    for folder in SOURCE_FOLDERS:
        for path in sorted((REPO / folder).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
            bare += [f"{path.relative_to(REPO)}:{line}: {name}"
                     for line, name in _imported_modules(tree)
                     if name.split(".")[0] in CLASHING]
    assert not bare, "bare imports (use taxdet.<name>):\n" + "\n".join(bare)
