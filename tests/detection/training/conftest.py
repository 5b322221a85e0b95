"""The library's log messages go to the (captured) stderr, as the training tools print them."""

import pytest

from taxdet.core.logs import configure_logging


@pytest.fixture(autouse=True)
def log_to_stderr():
    configure_logging(0)
