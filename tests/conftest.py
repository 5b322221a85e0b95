"""Fixtures shared by every test folder."""

import contextlib
import importlib.util
import io

import numpy as np
import pytest

import taxdet.supertax as supertax
from tests.paths import DRIVING, REPO


@pytest.fixture(scope="session")
def taxset():
    return supertax.load([DRIVING])


@pytest.fixture(scope="session")
def driving(taxset):
    """The repo's driving taxonomies (super-taxonomy + customers a, b, c): ``taxset`` under
    the name the dataset and evaluation tests use."""
    return taxset


@pytest.fixture(scope="session")
def head_masks(taxset):
    return np.asarray(taxset.masks)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a test module: tiny models on a shared 2-core machine run ~10x
    slower with two spinning OpenMP threads. Use as
    ``pytestmark = pytest.mark.usefixtures("one_thread")``."""
    import torch  # here, not at the top: the supertax tests need no torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


_TOOLS: dict[str, object] = {}


def _tool(name: str):
    if name not in _TOOLS:
        spec = importlib.util.spec_from_file_location(f"tool_{name}", REPO / "tools" / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _TOOLS[name] = module
    return _TOOLS[name]


@pytest.fixture
def run_tool():
    """``run_tool(name, *argv)`` runs ``tools/<name>.py``'s ``main`` in-process and returns
    ``(exit code, stdout, stderr)``; ``SystemExit`` (argparse) becomes its code."""
    def run(name: str, *argv: str) -> tuple[int, str, str]:
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                code = _tool(name).main([str(a) for a in argv])
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else 2
        return code, out.getvalue(), err.getvalue()
    return run
