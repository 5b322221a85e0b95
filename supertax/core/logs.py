"""One logging set-up for every CLI: ``-v`` / ``-q`` flags and a plain message format.

Library modules log through ``logging.getLogger(__name__)``; nothing here is called at import.
A CLI calls ``add_verbosity_flags(parser)`` and, once its arguments are parsed,
``configure_logging(args.verbose - args.quiet)``:

* level 0 (default): INFO and above, printed as the message alone (warnings as
  ``warning: <message>``), to stderr;
* ``-v``: DEBUG as well; ``-q``: warnings and errors only; ``-qq``: errors only.

Python warnings (``warnings.warn``) are routed into the same handler.
"""

from __future__ import annotations

import argparse
import logging
import sys
from typing import TextIO

ROOT_LOGGER = "taxdet"
LEVELS = {-2: logging.ERROR, -1: logging.WARNING, 0: logging.INFO, 1: logging.DEBUG}


class _Format(logging.Formatter):
    """``message`` for INFO / DEBUG, ``<level>: message`` for warnings and errors."""

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        if record.levelno >= logging.WARNING:
            return f"{record.levelname.lower()}: {text}"
        return text


class _StderrHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Writes to whatever ``sys.stderr`` is when a record is emitted (so a test's capture, or a
    redirect made after set-up, sees the messages)."""

    def __init__(self) -> None:
        super().__init__(sys.stderr)

    @property
    def stream(self) -> TextIO:
        return sys.stderr

    @stream.setter
    def stream(self, value: TextIO) -> None:
        pass


def add_verbosity_flags(parser: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` and ``-q/--quiet`` (each may be repeated)."""
    parser.add_argument("-v", "--verbose", action="count", default=0,
                        help="more messages (debug details)")
    parser.add_argument("-q", "--quiet", action="count", default=0,
                        help="fewer messages: -q warnings and errors only, -qq errors only")


def configure_logging(verbosity: int = 0, stream: TextIO | None = None) -> logging.Logger:
    """Send the project's log records (and Python warnings) to ``stream`` (default: the current
    ``sys.stderr``) at the level ``verbosity`` selects (module docstring); calling it again
    replaces the handler."""
    level = LEVELS[max(-2, min(1, verbosity))]
    logger = logging.getLogger(ROOT_LOGGER)
    for handler in list(logger.handlers):
        if getattr(handler, "_taxdet", False):
            logger.removeHandler(handler)
    handler = logging.StreamHandler(stream) if stream is not None else _StderrHandler()
    handler._taxdet = True  # type: ignore[union-attr]
    handler.setFormatter(_Format("%(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False
    logging.captureWarnings(True)
    warnings_logger = logging.getLogger("py.warnings")
    warnings_logger.handlers = [handler]
    warnings_logger.propagate = False
    return logger
