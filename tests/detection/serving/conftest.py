"""The serving tests' checkpoint, images under an images root, and a service on them."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import cv2
import pytest

from tests.detection.export.export_cases import make_confident_checkpoint, sample_images

# a low default threshold: the test checkpoint is untrained, its scores are small
SCORE = 0.2


def labeling_config(labels, name="label", image="image", key="image") -> str:
    """A Label Studio labeling config with one RectangleLabels control on one Image."""
    rows = "".join(f'<Label value="{v}" background="red"/>' for v in labels)
    return (f'<View><Image name="{image}" value="${key}"/>'
            f'<RectangleLabels name="{name}" toName="{image}">{rows}</RectangleLabels></View>')


@pytest.fixture(scope="package")
def served(tmp_path_factory, taxset):
    """A checkpoint, images as Label Studio's local files (``root/pics/imgN.png``) and uploads
    (``root/upload/1/imgN.png``), and a loaded ``PrelabelService``."""
    from taxdet.detection.serving.prelabel_service import PrelabelService
    from taxdet.detection.serving.serve_options import ServeOptions
    base = tmp_path_factory.mktemp("serve")
    make_confident_checkpoint(base / "best.pt", taxset)
    root = base / "root"
    names = []
    for folder in ("pics", "upload/1"):
        (root / folder).mkdir(parents=True)
        for i, image in enumerate(sample_images()):
            cv2.imwrite(str(root / folder / f"img{i}.png"), cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
            names.append(f"{folder}/img{i}.png")
    (base / "outside.png").write_bytes((root / "pics/img0.png").read_bytes())
    (root / "pics/notes.png").write_bytes(b"not an image at all")
    options = ServeOptions(checkpoint=base / "best.pt", images_root=root, score_threshold=SCORE,
                           projects=["7=customer_a"], max_wait_ms=20)
    return SimpleNamespace(base=base, root=root, ckpt=base / "best.pt",
                           service=PrelabelService(options), options=options,
                           local=[f"/data/local-files/?d=pics/img{i}.png" for i in range(3)])


@pytest.fixture
def client(served):
    from fastapi.testclient import TestClient

    from taxdet.detection.serving.serve_app import create_app
    with TestClient(create_app(served.service)) as c:
        yield c


def image_path(root: Path, url: str) -> Path:
    return root / url.split("d=", 1)[1]
