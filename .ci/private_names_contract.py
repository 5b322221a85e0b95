"""An import-linter contract: a package imports no private name from outside itself.

grimp's graph knows which modules import which, not the names; this contract reads the ``from …
import …`` statements of the package's modules and refuses a name starting with ``_`` (dunder
names such as ``__version__`` excepted) imported from a module outside the package.
"""

from __future__ import annotations

import ast
import importlib.util
from pathlib import Path

import grimp
from importlinter.application import output
from importlinter.domain import fields
from importlinter.domain.contract import Contract, ContractCheck


def _is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def _absolute(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from`` import reads (relative imports resolved)."""
    if not node.level:
        return node.module or ""
    parts = module.split(".")
    base = parts if is_package else parts[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def private_imports(module: str, package: str) -> list[str]:
    """``"<module>:<line>: from <source> import <name>"`` for every private name from outside."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.origin:
        return []
    path = Path(spec.origin)
    found = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not isinstance(node, ast.ImportFrom):
            continue
        source = _absolute(module, path.name == "__init__.py", node)
        if source == package or source.startswith(package + "."):
            continue
        names = [alias.name for alias in node.names]
        if any(_is_private(part) for part in source.split(".")):
            names = [f"{source} (private module)"]
        for name in names:
            if _is_private(name) or name.endswith("(private module)"):
                found.append(f"{module}:{node.lineno}: from {source} import {name}")
    return found


class PrivateNamesContract(Contract):
    """Options: ``packages``, the packages whose modules may not import private names."""

    packages = fields.ListField(subfield=fields.StringField())

    def check(self, graph: grimp.ImportGraph, verbose: bool) -> ContractCheck:
        found = []
        for package in self.packages:  # type: ignore[attr-defined]
            for module in sorted({package} | graph.find_descendants(package)):
                found.extend(private_imports(module, package))
        return ContractCheck(kept=not found, metadata={"found": found})

    def render_broken_contract(self, check: ContractCheck) -> None:
        output.print_error("Private names imported from another package:", bold=False)
        output.new_line()
        for line in check.metadata["found"]:
            output.print_error(f"- {line}", bold=False)
        output.new_line()
