"""The one base class for bad user input, and the CLI wrapper that prints it.

Every error caused by what a user gave us (a file, a record in it, a flag, a setting)
derives from ``InputError``. The command-line tools print such an error as
``error: <message>`` and exit 1; any other exception is a bug and keeps its traceback.

Some subclasses also derive from the matching built-in type (``ValueError``,
``FileNotFoundError``, ``OSError``) so library callers that catch those keep working.
"""

from __future__ import annotations

import sys
from typing import Callable

EXIT_INPUT_ERROR = 1


class InputError(Exception):
    """Bad user input: the message names the file and record (or flag) and what is wrong."""


class ConfigError(InputError, ValueError):
    """A setting (config field, flag, constructor option) out of range or of the wrong kind."""


class InputNotFoundError(InputError, FileNotFoundError):
    """A file or folder the user named does not exist."""


class OutputError(InputError, OSError):
    """An output path that cannot be written, or that would overwrite an input or a run."""


def run_cli(main: Callable[[], int]) -> int:
    """Call a CLI's ``main``; an ``InputError`` becomes ``error: ...`` on stderr and exit 1."""
    try:
        return main()
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INPUT_ERROR
