"""The files ``tools/predict.py`` writes, one per ``--format``:

* ``coco`` (CVAT, Label Studio's COCO import, ``evaluate.py --predictions``): a COCO file with
  scored annotations (``taxdet.detection.prediction.prelabels.coco_prelabels``);
* ``label-studio``: a task list whose every task carries the model's prediction, and beside it
  (``<out stem>.label_config.xml``) the labeling config for the output taxonomy's labels
  (``taxdet.detection.prediction.ls_format``);
* ``results``: a COCO results list.

Image ids are the customer file's where it has the image (``own_image_ids``), category ids the
label space's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from taxdet.core.files import write_atomic
from taxdet.detection.prediction.customer_labels import LabelSpace

FORMATS = ("coco", "label-studio", "results")


def config_path(out: Path) -> Path:
    """Where ``--format label-studio`` writes the labeling config: beside ``out``."""
    return out.with_name(out.name.removesuffix(".json") + ".label_config.xml")


def format_outputs(out: Path, fmt: str) -> dict[str, Path]:
    """Every file a format writes, by the flag that names it."""
    extra = {"--out (labeling config)": config_path(out)} if fmt == "label-studio" else {}
    return {"--out": out, **extra}


@dataclass
class Prelabels:
    """What is written: image records, COCO results (both in the output's ids), the label
    space, and ``info`` (checkpoint, thresholds, how ids were found, counts)."""

    images: list[dict]
    results: list[dict]
    space: LabelSpace
    info: dict = field(default_factory=dict)


def write_prelabels(out: Path, fmt: str, pre: Prelabels, checkpoint: Path,
                    url_prefix: str | None = None) -> list[Path]:
    """Write ``pre`` as ``fmt`` to ``out`` (and the labeling config); returns the files."""
    if fmt == "results":
        write_atomic(out, json.dumps(pre.results) + "\n")
        return [out]
    if fmt == "coco":
        from taxdet.detection.prediction.prelabels import coco_prelabels
        write_atomic(out, json.dumps(coco_prelabels(pre.images, pre.results, pre.space,
                                                    info=pre.info)) + "\n")
        return [out]
    from taxdet.detection.prediction import ls_format as ls
    config = ls.default_config([lab.name for lab in pre.space.labels])
    tasks = ls.label_studio_tasks(pre.images, pre.results, pre.space, config,
                                  ls.model_version(checkpoint),
                                  ls.LOCAL_FILES_URL if url_prefix is None else url_prefix)
    write_atomic(out, json.dumps(tasks) + "\n")
    write_atomic(config_path(out), ls.labeling_config_xml(config))
    return [out, config_path(out)]
