"""One pre-labeling run, as ``tools/predict.py`` does it: images in, a COCO file (or results
list) in the super-taxonomy's or a customer's labels out.

    opts = PredictOptions(checkpoint=Path("runs/x/last.pt"), images=Path("photos"),
                          customer="customer_b", out=Path("pre.json"))
    run = run_prediction(opts)
    print(prediction_summary(run, opts.out))

Skipped (unreadable) images are a logged warning.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import taxdet.supertax as supertax
from taxdet.core.files import check_outputs, taxonomy_inputs, write_atomic
from taxdet.detection.prediction.customer_labels import LabelSpace, customer_labels, super_labels
from taxdet.detection.prediction.image_inputs import ImageSet, find_images, read_images
from taxdet.detection.prediction.thresholds_file import (
    Thresholds,
    apply_thresholds,
    read_thresholds,
)

log = logging.getLogger(__name__)
MAX_LISTED = 20  # skipped images named in the warning


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
    draw: Path | None = None
    batch_size: int = 8
    device: str = "auto"
    workers: int = 2
    use_ema: bool = True
    hierarchy_decoding: bool | None = None


@dataclass
class PredictionRun:
    """The images read, the kept detections (in ``space``'s ids) and the label space."""

    images: ImageSet
    results: list[dict]
    space: LabelSpace


def label_space(opts: PredictOptions, taxset: supertax.TaxonomySet) -> LabelSpace:
    if opts.customer is None:
        return super_labels(taxset)
    return customer_labels(taxset, opts.customer, opts.categories)


def check_thresholds(thresholds: Thresholds | None, space: LabelSpace, path: Path) -> None:
    if thresholds is not None:
        thresholds.check_names(list(space.names.values()), space.taxonomy, str(path))


def warn_skipped(images: ImageSet, total: int) -> None:
    """One warning naming up to ``MAX_LISTED`` unreadable images."""
    if images.skipped:
        listed = "\n  ".join(images.skipped[:MAX_LISTED])
        more = len(images.skipped) - MAX_LISTED
        log.warning(f"{len(images.skipped)} of {total} images skipped (unreadable):\n  "
                    f"{listed}" + (f"\n  ... and {more} more" if more > 0 else ""))


def write_output(opts: PredictOptions, images: ImageSet, results: list[dict],
                 space: LabelSpace) -> None:
    """``opts.out``: a COCO file with scored annotations, or the results list."""
    if opts.format == "results":
        data = results
    else:
        from taxdet.detection.prediction.prelabels import coco_prelabels
        data = coco_prelabels(images.images, results, space, info={
            "checkpoint": str(opts.checkpoint), "score_threshold": opts.score_threshold,
            "thresholds": str(opts.thresholds) if opts.thresholds else None})
    write_atomic(opts.out, json.dumps(data) + "\n")


def prediction_summary(run: PredictionRun, out: Path) -> str:
    """Detections per label, and the labels not predicted."""
    images, results, space = run.images, run.results, run.space
    per = Counter(r["category_id"] for r in results)
    lines = [f"wrote {out}: {len(results)} detections on {len(images.images)} images, in "
             f"{space.taxonomy!r}"]
    lines += [f"  {name:<20} {per[cat]:>6}" for cat, name in sorted(space.names.items())
              if name not in space.not_predicted]
    if space.not_predicted:
        lines.append(f"not predicted (maps_to: null): {', '.join(space.not_predicted)}")
    return "\n".join(lines)


def run_prediction(opts: PredictOptions) -> PredictionRun:
    """Check inputs and outputs, load the model, read and predict the images, keep what passes
    the thresholds and write ``opts.out``."""
    from taxdet.detection.prediction.drawing import drawing_path
    from taxdet.detection.prediction.predictor import load_predictor, predict_images
    taxset = supertax.load(opts.taxonomies) if opts.taxonomies else None
    names, base = find_images(opts.images, opts.image_list, list(opts.patterns))
    files = [Path(n) if base is None else base / n for n in names]
    outputs = {"--out": opts.out}
    if opts.draw:
        outputs.update({f"--draw ({n})": drawing_path(opts.draw, n) for n in names})
    inputs = [opts.checkpoint, opts.categories, opts.thresholds, *files]
    check_outputs(outputs, [p for p in inputs if p] + (taxonomy_inputs(taxset) if taxset else []))
    thresholds = read_thresholds(opts.thresholds) if opts.thresholds else None
    predictor, taxset, cfg = load_predictor(opts.checkpoint, use_ema=opts.use_ema,
                                            device=opts.device, taxset=taxset,
                                            hierarchy_decoding=opts.hierarchy_decoding)
    space = label_space(opts, taxset)
    check_thresholds(thresholds, space, opts.thresholds)
    images = read_images(names, base, workers=max(1, opts.workers))
    warn_skipped(images, len(names))
    coco = {"images": images.images, "annotations": [], "categories": []}
    raw = predict_images(predictor, coco, images.base, taxset=taxset,
                         image_size=cfg.model.image_size, batch_size=opts.batch_size,
                         workers=opts.workers)
    results = apply_thresholds(space.relabel(raw), space.names, thresholds, opts.score_threshold)
    write_output(opts, images, results, space)
    return PredictionRun(images, results, space)


def save_run_drawings(run: PredictionRun, folder: Path) -> list[Path]:
    """Each image with its kept detections drawn, under ``folder``."""
    from taxdet.detection.prediction.drawing import save_drawings
    return save_drawings(run.results, run.images.images, run.images.base, run.space.names,
                         folder)
