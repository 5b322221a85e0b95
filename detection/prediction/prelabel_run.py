"""One pre-labeling run, as ``tools/predict.py`` does it: images in, a COCO file (or results
list) in the super-taxonomy's or a customer's labels out.

    opts = PredictOptions(checkpoint=Path("runs/x/last.pt"), images=Path("photos"),
                          customer="customer_b", out=Path("pre.json"))
    run = run_prediction(opts)
    print(prediction_summary(run, opts.out))

Labels and ids: the super-taxonomy's classes, or a customer's labels in the customer's own
category ids (``customer_labels.customer_id_space``: ``categories``, else the ``data:`` of
``taxonomies``, else of the checkpoint's training taxonomy files; none found is an error, never
1..L). Image ids are the customer file's where it has the image. A customer's detections are
its own top ``max_detections`` per image (``customer_topk``), as its sliced exported model
returns them. Skipped (unreadable) images and classes the thresholds leave without pre-labels
are logged warnings.

The model runs as ``PredictBench`` (torch eager, the default), or as the detector a
``DetectorFactory`` makes (``run_prediction(opts, detector)``; ``tools/predict.py --backend
onnxruntime`` passes ``taxdet.detection.export.trunk_backends.detector_factory``, the service's
trunk and sliced head, which this layer cannot import).
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import taxdet.supertax as supertax
from taxdet.core.files import check_outputs, taxonomy_inputs
from taxdet.detection.model.drawable_boxes import DroppedBoxes, warn_dropped
from taxdet.detection.prediction.customer_labels import (
    LabelSpace,
    TrainingTaxonomies,
    customer_id_space,
    customer_labels,
    super_labels,
)
from taxdet.detection.prediction.image_inputs import (
    ImageSet,
    find_images,
    read_images,
    warn_skipped,
)
from taxdet.detection.prediction.prelabel_files import Prelabels, format_outputs, write_prelabels
from taxdet.detection.prediction.thresholds_file import (
    Thresholds,
    apply_thresholds,
    classes_left_out,
    read_thresholds,
)

log = logging.getLogger(__name__)
# (predictor, taxset, customer or None, max detections per image) -> a detector with
# PredictBench's call, ``eval()``, ``device`` and ``columns`` (super column of each output)
DetectorFactory = Callable[..., object]


@dataclass(frozen=True)
class PredictOptions:
    """The flags of ``tools/predict.py``: one image source (``images``, ``image_list`` or
    ``patterns``), the label space (``customer``, ``categories``), filtering and output."""

    checkpoint: Path
    images: Path | None = None
    image_list: Path | None = None
    patterns: tuple[str, ...] = ()
    customer: str | None = None
    categories: Path | None = None
    taxonomies: list[str] | None = None
    score_threshold: float = 0.3
    thresholds: Path | None = None
    out: Path = Path("predictions.json")
    format: str = "coco"
    max_detections: int = 100
    url_prefix: str | None = None  # label-studio: image URL = prefix + file_name
    draw: Path | None = None
    batch_size: int = 8
    device: str = "auto"
    workers: int = 2
    use_ema: bool = True
    hierarchy_decoding: bool | None = None
    overwrite: bool = False       # replace existing outputs this tool did not write


@dataclass
class PredictionRun:
    """The images read, the kept detections (in ``space``'s ids), the label space, and the
    boxes the drawable-box rule dropped."""

    images: ImageSet
    results: list[dict]
    space: LabelSpace
    dropped: DroppedBoxes = field(default_factory=DroppedBoxes)


def label_space(opts: PredictOptions, taxset: supertax.TaxonomySet, cfg) -> LabelSpace:
    """The output labels and ids (module docstring). Label Studio takes names, not ids: there
    a customer without a file of its own still gets its labels."""
    if opts.customer is None:
        return super_labels(taxset)
    if opts.format == "label-studio":
        return customer_labels(taxset, opts.customer, opts.categories)
    training = None if opts.taxonomies else TrainingTaxonomies(
        tuple(map(str, cfg.data.taxonomies)), cfg.data.super_taxonomy)
    return customer_id_space(taxset, opts.customer, categories=opts.categories,
                             training=training)


def check_thresholds(thresholds: Thresholds | None, space: LabelSpace, path: Path) -> None:
    if thresholds is not None:
        thresholds.check_names(list(space.names.values()), space.taxonomy, str(path))


def prediction_summary(run: PredictionRun, out: Path) -> str:
    """Detections per label, the labels not predicted, and what was dropped or skipped (every
    format: a results or task file has no room for these counts)."""
    images, results, space = run.images, run.results, run.space
    per = Counter(r["category_id"] for r in results)
    lines = [f"wrote {out}: {len(results)} detections on {len(images.images)} images, in "
             f"{space.taxonomy!r}"]
    lines += [f"  {name:<20} {per[cat]:>6}" for cat, name in sorted(space.names.items())
              if name not in space.not_predicted]
    if space.not_predicted:
        lines.append(f"not predicted (maps_to: null): {', '.join(space.not_predicted)}")
    lines.append(f"dropped {run.dropped.boxes} degenerate boxes on {run.dropped.images} images, "
                 f"skipped {len(images.skipped)} unreadable images")
    return "\n".join(lines)


def check_run_outputs(opts: PredictOptions, names: list[str], base: Path,
                      taxset: supertax.TaxonomySet | None) -> None:
    """The outputs (``--out``, the labeling config, the drawings) against every input."""
    from taxdet.detection.prediction.drawing import drawing_path
    outputs: dict[str, Path | None] = dict(format_outputs(opts.out, opts.format))
    if opts.draw:
        outputs.update({f"--draw ({n})": drawing_path(opts.draw, n) for n in names})
    inputs = [opts.checkpoint, opts.categories, opts.thresholds, opts.image_list,
              *(base / n for n in names)]
    check_outputs(outputs, [p for p in inputs if p] + (taxonomy_inputs(taxset) if taxset else []),
                  tool="predict", overwrite=opts.overwrite, drawings={"--draw": opts.draw},
                  input_folders=[p for p in (opts.images,) if p])


def predict_space(opts: PredictOptions, predictor, space: LabelSpace, images: ImageSet,
                  taxset: supertax.TaxonomySet, image_size: int,
                  detector: DetectorFactory | None = None) -> list[dict]:
    """COCO results in super ids of ``space``'s columns: at most ``opts.max_detections`` per
    image, counted within them (a customer's top-k, as its sliced model); ``detector``: the
    model as that factory makes it (default: ``PredictBench``)."""
    from taxdet.detection.prediction.customer_topk import customer_predictor, to_super_ids
    from taxdet.detection.prediction.predictor import predict_images
    columns = tuple(space.column_labels())
    if detector is not None:
        predictor = detector(predictor, taxset, space.customer, opts.max_detections)
        columns = tuple(predictor.columns)
    elif space.customer is None:
        predictor.max_det = opts.max_detections
    else:
        predictor = customer_predictor(predictor, columns, opts.max_detections)
    coco = {"images": images.images, "annotations": [], "categories": []}
    raw = predict_images(predictor, coco, images.base, taxset=taxset, image_size=image_size,
                         batch_size=opts.batch_size, workers=opts.workers)
    return raw if space.customer is None and detector is None else to_super_ids(raw, columns)


def warn_left_out(candidates: list[dict], space: LabelSpace, thresholds: Thresholds | None,
                  opts: PredictOptions) -> None:
    """One warning naming the classes the thresholds leave without any pre-label."""
    left = classes_left_out(candidates, {c: n for c, n in space.names.items()
                                         if n not in space.not_predicted},
                            thresholds, opts.score_threshold)
    if left:
        given = f"--thresholds {opts.thresholds}" if opts.thresholds else "--score-threshold"
        log.warning(f"no pre-labels for {len(left)} classes under {given}: "
                    + "; ".join(f"{n} ({why})" for n, why in left.items()))


def own_ids(opts: PredictOptions, images: ImageSet, results: list[dict],
            space: LabelSpace) -> tuple[list[dict], list[dict], dict]:
    """(image records, results, info entries): image ids the customer file's where it has the
    image (not for the results list of a super-taxonomy run: no file)."""
    if space.ids_from is None:
        return images.images, results, {}
    from taxdet.detection.prediction.prelabels import own_image_ids, renumber_images
    mapping, note = own_image_ids(images.images, space.ids_from)
    log.info(note)
    recs, results = renumber_images(images.images, results, mapping)
    return recs, results, {"image_ids_from": space.ids_from, "image_ids": note}


def run_prediction(opts: PredictOptions, detector: DetectorFactory | None = None
                   ) -> PredictionRun:
    """Check inputs and outputs, load the model, read and predict the images (with
    ``detector``'s model when given: module docstring), keep what passes the thresholds and
    write ``opts.out``."""
    from taxdet.detection.prediction.predictor import load_predictor
    taxset = supertax.load(opts.taxonomies) if opts.taxonomies else None
    names, base = find_images(opts.images, opts.image_list, list(opts.patterns))
    check_run_outputs(opts, names, base, taxset)
    thresholds = read_thresholds(opts.thresholds) if opts.thresholds else None
    predictor, taxset, cfg = load_predictor(opts.checkpoint, use_ema=opts.use_ema,
                                            device=opts.device, taxset=taxset,
                                            hierarchy_decoding=opts.hierarchy_decoding)
    space = label_space(opts, taxset, cfg)
    if space.ids_from:  # the customer's own file is an input too
        check_outputs(dict(format_outputs(opts.out, opts.format)), [space.ids_from])
    check_thresholds(thresholds, space, opts.thresholds)
    images = read_images(names, base, workers=max(1, opts.workers))
    warn_skipped(images.skipped, len(names), log)
    candidates = space.relabel(predict_space(opts, predictor, space, images, taxset,
                                             cfg.model.image_size, detector))
    warn_left_out(candidates, space, thresholds, opts)
    results = apply_thresholds(candidates, space.names, thresholds, opts.score_threshold)
    records, results, id_info = own_ids(opts, images, results, space)
    warn_dropped(predictor.dropped, f"--checkpoint {opts.checkpoint}", log)
    info = {"checkpoint": str(opts.checkpoint), "score_threshold": opts.score_threshold,
            "thresholds": str(opts.thresholds) if opts.thresholds else None,
            "max_detections": opts.max_detections, "decoding": predictor.decoding,
            **predictor.dropped.info(), **id_info}
    write_prelabels(opts.out, opts.format, Prelabels(records, results, space, info),
                    opts.checkpoint, opts.url_prefix)
    return PredictionRun(ImageSet(records, images.base, images.skipped), results, space,
                         predictor.dropped)


def save_run_drawings(run: PredictionRun, folder: Path) -> list[Path]:
    """Each image with its kept detections drawn, under ``folder``."""
    from taxdet.detection.prediction.drawing import save_drawings
    return save_drawings(run.results, run.images.images, run.images.base, run.space.names,
                         folder)
