"""Names that may become path components: taxonomy, label, class and customer names.

Every place that builds a path from such a name goes through ``name_path(folder, name, what)``
(or ``check_name``): a name with a path separator (``/`` or ``\\``), ``.`` or ``..``, an
absolute name, a NUL or another control character, or an empty name is refused with an
``UnsafeNameError`` that shows the name escaped (``repr``). ``name_problem`` gives the reason
alone, for the taxonomy validator (which adds ``file:line:col``).
"""

from __future__ import annotations

import unicodedata
from pathlib import Path, PurePosixPath, PureWindowsPath

from taxdet.core.errors import InputError


class UnsafeNameError(InputError, ValueError):
    """A name that cannot safely be a file or folder name."""


def name_problem(name: object) -> str | None:
    """Why ``name`` cannot be a path component, or None when it can."""
    if not isinstance(name, str) or not name:
        return "is empty" if name == "" else f"is a {type(name).__name__}, not text"
    if name in (".", ".."):
        return f"is {name!r}, a folder reference"
    if "/" in name or "\\" in name:
        return "contains a path separator (/ or \\)"
    if PurePosixPath(name).is_absolute() or PureWindowsPath(name).is_absolute() or (
            len(name) >= 2 and name[1] == ":" and name[0].isalpha()):
        return "is an absolute path"
    bad = next((c for c in name if unicodedata.category(c) == "Cc"), None)
    if bad is not None:
        return "contains a NUL character" if bad == "\0" else \
            f"contains the control character {bad!r}"
    return None


def check_name(name: object, what: str = "name") -> str:
    """``name`` itself when it can be a path component, else ``UnsafeNameError``."""
    problem = name_problem(name)
    if problem:
        raise UnsafeNameError(f"{what} {name!r} {problem}: it cannot name a file or folder")
    return name  # type: ignore[return-value]


def name_path(folder: str | Path, name: object, what: str = "name") -> Path:
    """``folder / name``, refusing a ``name`` that would leave ``folder`` (``check_name``)."""
    return Path(folder) / check_name(name, what)
