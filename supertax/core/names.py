"""Close-match hints for names the user misspelled (keys, flags, labels, classes)."""

from __future__ import annotations

import difflib


def did_you_mean(name: object, choices: list[str]) -> str:
    """``"; did you mean 'x'?"`` for the closest of ``choices`` (case-insensitive), else ``""``."""
    if not isinstance(name, str):
        return ""
    lower = {c.lower(): c for c in reversed(choices)}
    match = difflib.get_close_matches(name.lower(), list(lower), n=1, cutoff=0.5)
    return f"; did you mean {lower[match[0]]!r}?" if match else ""
