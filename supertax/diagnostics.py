"""Problems found in taxonomy files, each with a position users can jump to."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from taxdet.core.errors import InputError
from taxdet.supertax.yamlpos import Pos

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    pos: Pos
    severity: str  # ERROR or WARNING
    message: str

    def __str__(self) -> str:
        return f"{self.pos}: {self.severity}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.pos.file, "line": self.pos.line, "col": self.pos.col,
                "severity": self.severity, "message": self.message}


class TaxonomyError(InputError):
    """Taxonomy files that do not validate; ``diagnostics`` lists every problem."""

    def __init__(self, diagnostics: list[Diagnostic]):
        self.diagnostics = diagnostics
        errors = [d for d in diagnostics if d.severity == ERROR]
        lines = "\n".join(str(d) for d in errors)
        super().__init__(f"{len(errors)} error(s) in taxonomy files:\n{lines}")


def has_errors(diagnostics: list[Diagnostic]) -> bool:
    return any(d.severity == ERROR for d in diagnostics)
