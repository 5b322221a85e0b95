"""Problems found in taxonomy files, each with a position users can jump to."""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from supertax.errors import InputError

from supertax.yamlpos import Pos

ERROR = "error"
WARNING = "warning"


@dataclass(frozen=True)
class Diagnostic:
    pos: Pos
    severity: str  # ERROR or WARNING
    message: str

    def __str__(self) -> str:
        return f"{self.pos}: {self.severity}: {self.message}"

    def to_dict(self) -> dict:
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


def did_you_mean(name: object, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` (case-insensitive), else ``""``."""
    if not isinstance(name, str):
        return ""
    lower = {c.lower(): c for c in reversed(choices)}
    match = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.5)
    return f"; did you mean {lower[match[0]]!r}?" if match else ""
