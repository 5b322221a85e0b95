"""Every test here may run a CLI in-process, which configures the project's logging
(``taxdet.core.logs.configure_logging``): undo that afterwards, so the next test (and pytest's
``caplog``) starts from Python's default set-up."""

from __future__ import annotations

import logging

import pytest


@pytest.fixture(autouse=True)
def reset_project_logging():
    yield
    for name in ("taxdet", "py.warnings"):
        logger = logging.getLogger(name)
        for handler in list(logger.handlers):
            if getattr(handler, "_taxdet", False):
                logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
        logger.propagate = True
    logging.captureWarnings(False)
