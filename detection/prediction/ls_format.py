"""Label Studio's side of pre-labels: predictions as rectangle regions, the labeling config,
and import-ready tasks. Shared by ``tools/predict.py --format label-studio`` and the Label
Studio ML backend (``taxdet.detection.serving``).

Boxes: finite, clipped to the image, at least 1 px wide and high (others are dropped). A
region (Label Studio's ``rectanglelabels`` result)::

    {"id": "r0", "from_name": "label", "to_name": "image", "type": "rectanglelabels",
     "original_width": 640, "original_height": 480, "image_rotation": 0,
     "value": {"x": 10.0, "y": 5.0, "width": 20.0, "height": 30.0, "rotation": 0,
               "rectanglelabels": ["Car"]},
     "score": 0.91}

The prediction's ``score`` is the mean region score (0 without regions), as HumanSignal's YOLO
backend reports it; ``model_version`` names the checkpoint and its file digest
(``model_version``). A task file (``label_studio_tasks``) is a JSON list of
``{"data": {"image": URL, "file_name": ...}, "predictions": [prediction]}``, one per image,
which Label Studio's import takes as it is; ``labeling_config_xml`` is the project's config
for the customer's labels.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote
from xml.sax.saxutils import quoteattr

from taxdet.detection.prediction.customer_labels import LabelSpace

LOCAL_FILES_URL = "/data/local-files/?d="  # Label Studio's local-files storage


@dataclass(frozen=True)
class LabelingConfig:
    """The rectangle control of a labeling config: regions are written with its ``from_name``
    / ``to_name``, the image URL is ``task["data"][image_key]``, ``labels`` its values."""

    from_name: str
    to_name: str
    image_key: str
    labels: tuple[str, ...]


def default_config(labels: list[str] | tuple[str, ...]) -> LabelingConfig:
    """The config ``labeling_config_xml`` writes: ``label`` on ``image`` from ``$image``."""
    return LabelingConfig("label", "image", "image", tuple(labels))


def labeling_config_xml(config: LabelingConfig) -> str:
    """A labeling config of one ``Image`` and its ``RectangleLabels`` (one ``Label`` each)."""
    rows = "".join(f"\n    <Label value={quoteattr(name)}/>" for name in config.labels)
    return (f"<View>\n  <Image name={quoteattr(config.to_name)} "
            f"value={quoteattr('$' + config.image_key)}/>\n"
            f"  <RectangleLabels name={quoteattr(config.from_name)} "
            f"toName={quoteattr(config.to_name)}>{rows}\n  </RectangleLabels>\n</View>\n")


def model_version(checkpoint: str | Path) -> str:
    """``<checkpoint stem>-<first 12 hex digits of its file's SHA-256>``."""
    digest = hashlib.sha256()
    with open(checkpoint, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return f"{Path(checkpoint).stem}-{digest.hexdigest()[:12]}"


def clean_box(bbox: list[float], width: int, height: int) -> tuple[float, ...] | None:
    """``[x, y, w, h]`` -> finite, clipped to the image, at least 1 px each way; else None."""
    if not all(math.isfinite(v) for v in bbox):
        return None
    x1, y1 = max(0.0, bbox[0]), max(0.0, bbox[1])
    x2, y2 = min(float(width), bbox[0] + bbox[2]), min(float(height), bbox[1] + bbox[3])
    if x2 - x1 < 1 or y2 - y1 < 1:
        return None
    return x1, y1, x2 - x1, y2 - y1


def region(index: int, name: str, box: tuple[float, ...], score: float, size: tuple[int, int],
           config: LabelingConfig) -> dict:
    """One ``rectanglelabels`` result; ``size`` (width, height) original pixels."""
    w, h = size
    x, y, bw, bh = box
    return {"id": f"r{index}", "from_name": config.from_name, "to_name": config.to_name,
            "type": "rectanglelabels", "original_width": w, "original_height": h,
            "image_rotation": 0,
            "value": {"x": 100.0 * x / w, "y": 100.0 * y / h, "width": 100.0 * bw / w,
                      "height": 100.0 * bh / h, "rotation": 0, "rectanglelabels": [name]},
            "score": round(score, 5)}


def prediction(results: list[dict], space: LabelSpace, size: tuple[int, int],
               config: LabelingConfig, model_version: str) -> dict:
    """One task's prediction: ``{"result": [regions], "score", "model_version"}``."""
    regions = []
    for r in results:
        box = clean_box(r["bbox"], *size)
        if box is not None:
            regions.append(region(len(regions), space.names[r["category_id"]], box, r["score"],
                                  size, config))
    score = sum(r["score"] for r in regions) / len(regions) if regions else 0.0
    return {"result": regions, "score": round(score, 5), "model_version": model_version}


def label_studio_tasks(images: list[dict], results: list[dict], space: LabelSpace,
                       config: LabelingConfig, version: str,
                       url_prefix: str = LOCAL_FILES_URL) -> list[dict]:
    """One task per image (COCO records), its ``data`` the image URL (``url_prefix`` + the
    percent-encoded ``file_name``, ``/`` kept: ``+&#%?`` and spaces survive as a query value
    or a path) and ``file_name``, with one prediction of ``results`` (COCO results in
    ``space``'s ids)."""
    per_image: dict[int, list[dict]] = {img["id"]: [] for img in images}
    for r in results:
        per_image[r["image_id"]].append(r)
    return [{"data": {config.image_key: url_prefix + quote(img["file_name"], safe="/"),
                      "file_name": img["file_name"]},
             "predictions": [prediction(per_image[img["id"]], space,
                                        (img["width"], img["height"]), config, version)]}
            for img in images]
