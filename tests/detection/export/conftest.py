"""The export tests' checkpoint: heads with spread-out outputs (``export_cases``)."""

from __future__ import annotations

import pytest

from tests.detection.export.export_cases import make_confident_checkpoint


@pytest.fixture(scope="package")
def confident_ckpt(tmp_path_factory, taxset):
    path = tmp_path_factory.mktemp("export_ckpt") / "best.pt"
    make_confident_checkpoint(path, taxset)
    return path
