"""The pre-labeling service behind the HTTP routes: the model loaded once, projects mapped to
customers, tasks turned into Label Studio predictions.

    service = PrelabelService(ServeOptions(checkpoint=Path("runs/demo/last.pt")))
    status, body = await service.predict({"tasks": [...], "project": "3.1700000000",
                                          "label_config": "<View>...</View>"})

``/predict`` answers ``{"results": [one prediction per task, in order], "model_version"}``.
A request with a bad task answers the status of its first bad task (4xx) and
``{"detail", "errors": [{"task", "status", "message"}, ...]}`` naming every bad task: Label
Studio needs one result per task, so a partial list would be refused. Other requests, batched
with it or not, are served as usual.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

import numpy as np

from taxdet.core.errors import ConfigError, InputError
from taxdet.detection.export.runtime import letterbox
from taxdet.detection.export.shared_trunk import CustomerHead, customer_head, detect_images
from taxdet.detection.export.trunk_backends import trunk_backend
from taxdet.detection.prediction.customer_labels import LabelSpace, customer_labels
from taxdet.detection.prediction.hierarchy_decoding import decoding_matrix
from taxdet.detection.prediction.ls_format import LabelingConfig, model_version, prediction
from taxdet.detection.prediction.predictor import load_predictor
from taxdet.detection.prediction.thresholds_file import Thresholds, read_thresholds
from taxdet.detection.serving.dynamic_batcher import DynamicBatcher
from taxdet.detection.serving.image_fetch import ImageFetcher, TaskError, decode_rgb
from taxdet.detection.serving.label_config import read_labeling_config
from taxdet.detection.serving.ls_regions import kept_results
from taxdet.detection.serving.project_customers import (
    CustomerMap,
    parse_project_flags,
    project_id,
)
from taxdet.detection.serving.serve_options import ServeOptions

logger = logging.getLogger(__name__)


@dataclass
class ImageItem:
    """One letterboxed image for the batcher: [3, S, S] float32 0..255, its scale, its
    original (h, w), its customer."""

    image: np.ndarray
    scale: float
    size: tuple[int, int]
    customer: str


def predictable_heads(model, taxset, hierarchy, every_column: bool = False
                      ) -> dict[str, CustomerHead]:
    """A head per customer with at least one predictable label (others are logged);
    ``hierarchy``: the decoding matrix (or a bool), ``every_column``: full heads
    (``shared_trunk.customer_head``)."""
    heads = {}
    for tax in taxset.taxonomies:
        try:
            heads[tax.name] = customer_head(model, taxset, tax.name, hierarchy, every_column)
        except ConfigError as exc:
            logger.warning("customer %s is not served: %s", tax.name, exc)
    if not heads:
        raise ConfigError("no customer of the checkpoint has a predictable label")
    return heads


def customer_thresholds(entries: list[str], spaces: dict[str, LabelSpace]
                        ) -> dict[str, Thresholds]:
    """``"[CUSTOMER=]YAML"`` entries -> customer -> thresholds (checked against its labels)."""
    out: dict[str, Thresholds] = {}
    for entry in entries:
        customer, sep, path = entry.partition("=")
        if not sep:
            customer, path = "", entry
        th = read_thresholds(path)
        name = customer or th.taxonomy
        if name not in spaces:
            raise ConfigError(f"--thresholds {entry}: customer {name!r} is not served "
                              f"({', '.join(spaces)}); write CUSTOMER=YAML")
        th.check_names(list(spaces[name].names.values()), name, path)
        out[name] = th
    return out


def inference_backend(options: ServeOptions, predictor, heads: dict[str, CustomerHead]):
    """``SharedTrunk`` (torch) or ``OnnxTrunk`` (ONNX Runtime, exported now) for ``heads``
    (``taxdet.detection.export.trunk_backends.trunk_backend``)."""
    return trunk_backend(options.backend, predictor, heads, options.threads)


class PrelabelService:
    """See the module docstring."""

    def __init__(self, options: ServeOptions, transport=None):
        self.options = options
        device = "cpu" if options.backend == "onnxruntime" else options.device
        predictor, taxset, cfg = load_predictor(options.checkpoint, use_ema=options.use_ema,
                                                device=device, hierarchy_decoding=False)
        self.taxset, self.image_size = taxset, cfg.model.image_size
        decoding = decoding_matrix(options.hierarchy_decoding, taxset, predictor.decoding_plan)
        self.hierarchy = decoding is not None  # any column scored from others
        self.heads = predictable_heads(predictor.model, taxset, decoding, options.full_heads)
        self.spaces = {c: customer_labels(taxset, c) for c in self.heads}
        self.thresholds = customer_thresholds(options.thresholds, self.spaces)
        projects = parse_project_flags(options.projects, list(self.heads))
        self.customer_map = CustomerMap.from_taxonomies(taxset, list(self.heads), projects)
        # the flags are checked: export and load the model now
        self.backend = inference_backend(options, predictor, self.heads)
        self.fetcher = ImageFetcher(options.images_root, options.label_studio_url,
                                    options.label_studio_token, options.limits, transport)
        self.batcher = DynamicBatcher(self.run_batch, options.max_batch, options.max_wait_ms)
        self.model_version = options.model_version or model_version(options.checkpoint)
        self.configs: dict[str, LabelingConfig] = {}  # project id -> config from /setup

    def run_batch(self, items: list[ImageItem]) -> list:
        """The batcher's function: one forward pass of the trunk for ``items``."""
        images = np.stack([it.image for it in items])
        customers = [it.customer for it in items]
        boxes, logits = self.backend.raw(images, customers)
        return detect_images(boxes, logits, [self.heads[c] for c in customers],
                             [it.scale for it in items], [it.size for it in items])

    def project_config(self, body: dict, key: str) -> tuple[LabelingConfig | None, str]:
        """(the labeling config of the request or of the project's ``/setup``, customer)."""
        pid = project_id(body.get("project"))
        xml = body.get(key)
        config = read_labeling_config(xml) if xml else self.configs.get(pid or "")
        customer = self.customer_map.resolve(body.get("project"),
                                             config.labels if config else None)
        if config is None:
            raise InputError(f"project {pid!r}: no labeling config (send label_config, or "
                             "call /setup first)")
        return config, customer

    def setup(self, body: dict) -> tuple[int, dict, str]:
        """``/setup``: remember the project's config and customer, and Label Studio's address;
        (status, JSON body, a log summary)."""
        pid = project_id(body.get("project"))
        try:
            config, customer = self.project_config(body, "schema")
        except InputError as exc:
            return 422, {"detail": f"project {pid!r}: {exc}"}, f"project {pid}"
        self.configs[pid or ""] = config
        self.fetcher.set_label_studio(body.get("hostname"), body.get("access_token"))
        return 200, {"model_version": self.model_version}, \
            f"project {pid} customer {customer} labels {','.join(config.labels)}"

    async def task_prediction(self, task: object, config: LabelingConfig, customer: str) -> dict:
        """One task -> its prediction (``TaskError`` naming the task)."""
        tid = task.get("id") if isinstance(task, dict) else None
        try:
            if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
                raise TaskError(400, "not a task object with a 'data' object")
            if config.image_key not in task["data"]:
                raise TaskError(400, f"its data has no {config.image_key!r} (the labeling "
                                     f"config's <Image value=\"${config.image_key}\">)")
            url = task["data"][config.image_key]
            data = await self.fetcher.read(url)
            image = await asyncio.to_thread(decode_rgb, data, self.options.limits.max_pixels,
                                            str(url))
        except TaskError as exc:
            raise TaskError(exc.status, f"task {tid}: {exc.message}", tid) from None
        boxed, scale = letterbox(image, self.image_size)
        size = (int(image.shape[0]), int(image.shape[1]))
        dets = await self.batcher.submit(ImageItem(boxed, scale, size, customer))
        results = kept_results(dets, self.heads[customer].outputs.columns,
                               self.spaces[customer], self.thresholds.get(customer),
                               self.options.score_threshold)
        return prediction(results, self.spaces[customer], (size[1], size[0]), config,
                          self.model_version)

    async def predict(self, body: dict) -> tuple[int, dict, str]:
        """``/predict``: (status, JSON body, a log summary)."""
        tasks = body.get("tasks")
        pid = project_id(body.get("project"))
        if not isinstance(tasks, list) or not tasks or len(tasks) > self.options.max_tasks:
            return 400, {"detail": f"'tasks' must be a list of 1 to {self.options.max_tasks} "
                                   "tasks"}, f"project {pid}"
        try:
            config, customer = self.project_config(body, "label_config")
        except InputError as exc:
            return 422, {"detail": f"project {pid!r}: {exc}"}, f"project {pid}"
        outcomes = await asyncio.gather(
            *(self.task_prediction(t, config, customer) for t in tasks), return_exceptions=True)
        for o in outcomes:  # anything but a task's own problem is the service's: 500
            if isinstance(o, BaseException) and not isinstance(o, TaskError):
                raise o
        errors = [o for o in outcomes if isinstance(o, TaskError)]
        summary = f"project {pid} customer {customer} tasks {len(tasks)}"
        if errors:
            listed = [{"task": e.task, "status": e.status, "message": e.message} for e in errors]
            return errors[0].status, {"detail": "; ".join(e.message for e in errors),
                                      "errors": listed}, f"{summary} bad {len(errors)}"
        regions = sum(len(o["result"]) for o in outcomes)
        return 200, {"results": outcomes, "model_version": self.model_version}, \
            f"{summary} regions {regions}"
