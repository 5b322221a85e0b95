"""Export a checkpoint's predict model to ONNX or TorchScript, with a label map beside it.

    exported = build_export(ckpt_path, customer="customer_b")        # an ExportNet + meaning
    write_export(exported, "model.onnx", "onnx")                     # + model.onnx.labels.json

The model is the checkpoint's, rebuilt by ``taxdet.detection.prediction.predictor.load_predictor``
(read with ``weights_only``, digest and taxonomy hash checked; EMA weights when present; eval
mode), at the trained image size or another multiple of 128 (``image_size``: same weights,
anchors for that size). With ``customer`` the class head is sliced to that customer's columns
(``taxdet.detection.export.sliced_head``). The graph is ``ExportNet`` (normalisation + network +
per-anchor box decoding); detections come from ``taxdet.detection.export.postprocess`` (top-k + NMS
in NumPy). The label map (``label_map``) says what the inputs and outputs are.

``hierarchy_decoding`` (``own | hierarchy | coverage``; None = ``coverage``, the default: the
checkpoint's decoding plan; True / False: hierarchy / own) writes the decoding among the
exported outputs into the label map's ``postprocess``: ``hierarchy`` (each parent output
scored as the max over itself and its descendant outputs) and, from the plan,
``descendant_decoded`` (outputs scored from their descendant outputs only) and ``excluded``
(outputs never detected), as ``load_predictor`` decodes. A sliced head knows only its own
outputs: a customer's parent output takes the max over the customer's descendant outputs only
(a descendant-decoded output without any is excluded).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import glob
import io
import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from taxdet.core import output_owner
from taxdet.core.errors import OutputError
from taxdet.core.files import write_atomic
from taxdet.core.json_files import load_json
from taxdet.datasets.coco_io import DatasetError
from taxdet.datasets.transforms import PAD_FILL
from taxdet.detection.export.export_net import ExportNet
from taxdet.detection.export.postprocess import PostprocessConfig, hierarchy_problem, plan_problem
from taxdet.detection.export.sliced_head import (
    HeadOutputs,
    customer_outputs,
    full_outputs,
    slice_class_head,
)
from taxdet.detection.model.build import create_model
from taxdet.detection.model.detector_config import TrainConfig
from taxdet.detection.model.hierarchy_scores import decoding_groups
from taxdet.detection.prediction.hierarchy_decoding import Decoding, decoding_matrix
from taxdet.detection.prediction.predictor import load_predictor
from taxdet.supertax import TaxonomySet

FORMATS = ("onnx", "torchscript")
DEFAULT_OPSET = 17
LABEL_MAP_FORMAT = "taxonomy-detection-export"
LABEL_MAP_VERSION = 1
INPUT_NAME, OUTPUT_NAMES = "images", ("boxes", "class_logits")


class LabelMapError(DatasetError):
    """A label map file that cannot be read or is not one ``write_export`` writes."""


@dataclass
class Exported:
    """An ``ExportNet`` ready to export and what it means."""

    net: ExportNet
    outputs: HeadOutputs
    taxset: TaxonomySet
    config: TrainConfig
    checkpoint: str
    post: PostprocessConfig = PostprocessConfig()

    @property
    def image_size(self) -> int:
        return self.net.image_size


def resized_model(model: torch.nn.Module, cfg: TrainConfig, taxset: TaxonomySet,
                  image_size: int) -> torch.nn.Module:
    """The same weights in a model built for ``image_size`` (``ConfigError`` if that is not a
    multiple of the model's largest stride)."""
    model_cfg = dataclasses.replace(cfg.model, image_size=image_size, pretrained_backbone=None)
    resized = create_model(model_cfg, taxset.num_classes, head_masks=np.asarray(taxset.masks))
    resized.load_state_dict(model.state_dict(), strict=True)
    return resized.eval()


def output_decoding(columns: tuple[int, ...], matrix: np.ndarray | None) -> dict:
    """``PostprocessConfig``'s decoding fields for outputs ``columns`` (output i = column
    ``columns[i]``) under the decoding ``matrix`` [K, K] (``ancestors`` or a
    ``coverage_matrix``; None: own): ``hierarchy`` (per output scored from others: (output, the
    other outputs...)), ``descendant_decoded`` (outputs not among their own sources) and
    ``excluded`` (outputs without any source among the outputs)."""
    if matrix is None:
        return {"hierarchy": (), "descendant_decoded": (), "excluded": ()}
    sub = np.asarray(matrix, dtype=bool)[np.ix_(list(columns), list(columns))]
    groups = decoding_groups(sub)
    return {"hierarchy": tuple((i, *[j for j in g if j != i]) for i, g in groups if g),
            "descendant_decoded": tuple(i for i, g in groups if g and i not in g),
            "excluded": tuple(i for i, g in groups if not g)}


def output_hierarchy(columns: tuple[int, ...], ancestors: np.ndarray
                     ) -> tuple[tuple[int, ...], ...]:
    """``PostprocessConfig.hierarchy`` for outputs ``columns`` (output i = column
    ``columns[i]``; ``ancestors`` [K, K]): per output with descendant outputs, (output, its
    descendant outputs...)."""
    return output_decoding(columns, ancestors)["hierarchy"]


def build_export(checkpoint: str | Path, customer: str | None = None,
                 image_size: int | None = None, hierarchy_decoding: Decoding = None
                 ) -> Exported:
    """The checkpoint's predict network as an ``ExportNet`` (module docstring), on the CPU;
    ``hierarchy_decoding`` None = coverage (the checkpoint's plan; hierarchy without one)."""
    bench, taxset, cfg = load_predictor(checkpoint, use_ema=True, device="cpu",
                                        hierarchy_decoding=False)
    model = bench.model
    if image_size is not None and image_size != cfg.model.image_size:
        model = resized_model(model, cfg, taxset, image_size)
    outputs = customer_outputs(taxset, customer) if customer else full_outputs(taxset)
    if customer:
        model = slice_class_head(model, outputs.columns)
    net = ExportNet(model.eval(), len(outputs.columns)).eval()
    matrix = decoding_matrix(hierarchy_decoding, taxset, bench.decoding_plan)
    post = PostprocessConfig(**output_decoding(outputs.columns, matrix))
    return Exported(net, outputs, taxset, cfg, str(checkpoint), post)


def example_input(image_size: int, batch: int = 1, seed: int = 0) -> torch.Tensor:
    """[batch, 3, S, S] float32 in 0..255: a traced example (and a verification input)."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randint(0, 256, (batch, 3, image_size, image_size), generator=gen).float()


def onnx_bytes(net: ExportNet, opset: int = DEFAULT_OPSET) -> bytes:
    """The ONNX file of ``net`` (TorchScript-based exporter; the batch dimension is free)."""
    buf = io.BytesIO()
    dynamic = {name: {0: "B"} for name in (INPUT_NAME, *OUTPUT_NAMES)}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation and tracer warnings
        torch.onnx.export(net, (example_input(net.image_size),), buf, dynamo=False,
                          opset_version=opset, input_names=[INPUT_NAME],
                          output_names=list(OUTPUT_NAMES), dynamic_axes=dynamic,
                          do_constant_folding=True)
    return buf.getvalue()


def torchscript_bytes(net: ExportNet) -> bytes:
    """The traced TorchScript archive of ``net`` (``torch.jit.load`` reads it)."""
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        traced = torch.jit.trace(net, (example_input(net.image_size),), check_trace=False)
        torch.jit.save(traced, buf)
    return buf.getvalue()


def label_map_path(model_path: str | Path) -> Path:
    """``model.onnx`` -> ``model.onnx.labels.json`` (same folder; the whole name, so the ONNX and
    TorchScript exports of one model keep their own)."""
    path = Path(model_path)
    return path.with_name(f"{path.name}.labels.json")


def label_map(exported: Exported, model_file: str, fmt: str,
              post: PostprocessConfig | None = None) -> dict:
    """What the exported file's input and outputs are (JSON-ready); ``post`` default: the
    export's own (``exported.post``)."""
    post = exported.post if post is None else post
    o, S = exported.outputs, exported.image_size
    A = int(exported.net.anchors.shape[0])
    sup = exported.taxset.names
    return {
        "format": LABEL_MAP_FORMAT, "version": LABEL_MAP_VERSION,
        "model_file": model_file, "model_format": fmt,
        "checkpoint": exported.checkpoint, "taxonomy_hash": exported.taxset.hash,
        "model": exported.config.model.name, "customer": o.customer,
        "input": {"name": INPUT_NAME, "shape": ["B", 3, S, S], "dtype": "float32",
                  "content": f"RGB 0..255; long side resized to {S}, padded bottom/right "
                             f"with {list(PAD_FILL)}; scale = {S} / original long side"},
        "outputs": {"boxes": {"shape": ["B", A, 4], "content": "x1 y1 x2 y2 model-input pixels"},
                    "class_logits": {"shape": ["B", A, len(o.columns)],
                                     "content": "logits; sigmoid = score"}},
        "classes": [{"index": i, "labels": list(names), "super_class": sup[col], "column": col}
                    for i, (col, names) in enumerate(zip(o.columns, o.labels))],
        "not_predicted": list(o.not_predicted),
        "postprocess": post.to_dict(),
    }


def export_bytes(exported: Exported, fmt: str, opset: int = DEFAULT_OPSET) -> bytes:
    if fmt == "onnx":
        return onnx_bytes(exported.net, opset)
    if fmt == "torchscript":
        return torchscript_bytes(exported.net)
    raise ValueError(f"unknown format {fmt!r}; choose one of {FORMATS}")


def write_export(exported: Exported, out: str | Path, fmt: str, opset: int = DEFAULT_OPSET,
                 verify: Callable[[Path, Path], object] | None = None) -> tuple[Path, Path]:
    """Write the model file and its label map; returns their paths. Both are first written
    into a hidden folder beside ``out`` (``staged``), ``verify(model, label map)`` runs on
    them there, and only then are they renamed into place: a failed check (its exception
    passes through) leaves neither file behind. The caller checks the paths against its inputs
    (``taxdet.core.files.check_outputs``)."""
    data = export_bytes(exported, fmt, opset)
    out = Path(out)
    text = json.dumps(label_map(exported, out.name, fmt), indent=2) + "\n"
    with staged(out) as folder:
        model, labels = write_atomic(folder / out.name, data), folder / label_map_path(out).name
        write_atomic(labels, text)
        if verify is not None:
            verify(model, labels)
        os.replace(model, out)
        os.replace(labels, label_map_path(out))
    for path in (out, label_map_path(out)):
        output_owner.record(path)
    return out, label_map_path(out)


@contextlib.contextmanager
def staged(out: Path) -> Iterator[Path]:
    """A hidden temporary folder beside ``out`` (``.<name>.staging-<random>``), removed with
    whatever is still in it; ``out``'s folder is created for it, and removed again on failure
    when it was created here and is left empty. ``OutputError`` when it cannot be created.

    The folder holds a ``.lock`` this process keeps locked (``flock``), so the staging folders
    of a killed export, whose lock died with it, are removed by the next export of ``out``
    (``remove_stale_staging``); a running export's are left alone."""
    made = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_staging(out)
        folder = tempfile.TemporaryDirectory(prefix=f".{out.name}{STAGING}", dir=out.parent)
    except OSError as exc:
        raise OutputError(f"{out}: cannot write here ({exc.strerror or exc})") from None
    try:
        with folder as name, _locked(Path(name) / ".lock"):
            yield Path(name)
    except BaseException:
        for parent in made:  # innermost first
            with contextlib.suppress(OSError):
                parent.rmdir()
        raise


STAGING = ".staging-"   # .<name>.staging-<random>/: an export's staging folder


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """Hold an ``flock`` on ``path``, which appears already locked (made under another name,
    locked, then renamed), so no sweeper ever sees it unlocked while this process lives."""
    fresh = path.with_name(path.name + ".new")
    fd = os.open(fresh, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        os.replace(fresh, path)
        yield
    finally:
        os.close(fd)


def remove_stale_staging(out: Path) -> list[Path]:
    """Remove the staging folders of ``out`` that no running export holds (a killed one's);
    returns them."""
    removed = []
    for folder in out.parent.glob(f".{glob.escape(out.name)}{STAGING}*"):
        lock = folder / ".lock"
        if folder.is_symlink() or not folder.is_dir() or not lock.is_file():
            continue
        try:
            fd = os.open(lock, os.O_RDONLY)
        except OSError:           # gone meanwhile (another export swept it), or not ours
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(folder, ignore_errors=True)   # still locked: nobody starts in it
            removed.append(folder)
        except OSError:           # held by a running export (or no locks here): left alone
            continue
        finally:
            os.close(fd)
    return removed


def read_label_map(path: str | Path) -> dict:
    """A label map written by ``write_export``; ``LabelMapError`` naming the file otherwise."""
    data = load_json(path, "label map", LabelMapError)
    if not isinstance(data, dict) or data.get("format") != LABEL_MAP_FORMAT:
        raise LabelMapError(f"{path}: not a label map of an exported model (no \"format\": "
                            f"\"{LABEL_MAP_FORMAT}\")")
    if data.get("version") != LABEL_MAP_VERSION:
        raise LabelMapError(f"{path}: label map version {data.get('version')!r}; this version "
                            f"reads {LABEL_MAP_VERSION}")
    for key in ("classes", "postprocess", "input"):
        if key not in data:
            raise LabelMapError(f"{path}: label map has no {key!r}")
    known = {f.name for f in dataclasses.fields(PostprocessConfig)}
    post = data["postprocess"]
    if not isinstance(post, dict) or not set(post) <= known:
        raise LabelMapError(f"{path}: label map 'postprocess' must be an object with keys among "
                            f"{sorted(known)}")
    shape = data["input"].get("shape") if isinstance(data["input"], dict) else None
    if not (isinstance(shape, list) and len(shape) == 4 and isinstance(shape[2], int)):
        raise LabelMapError(f"{path}: label map 'input' has no shape [B, 3, S, S]")
    outputs = len(data["classes"]) if isinstance(data["classes"], list) else 0
    problem = hierarchy_problem(post.get("hierarchy", []), outputs)
    if problem:
        raise LabelMapError(f"{path}: label map 'postprocess.hierarchy' {problem}")
    plan = plan_problem(post, outputs)
    if plan:
        raise LabelMapError(f"{path}: label map 'postprocess.{plan[0]}' {plan[1]}")
    return data
