"""One evaluation run, as ``tools/evaluate.py`` does it: options in, scores and files out.

    opts = EvaluateOptions(gt=Path("gt.json"), predictions=Path("preds.json"),
                           taxonomies=["taxonomies/driving"], json_out=Path("r.json"))
    run = run_evaluation(opts)             # loads, predicts (with a checkpoint), evaluates
    print(run.result.format_table())
    write_outputs(run, opts)               # --json, --markdown, --plots

Messages about what was read and written go to ``say`` (default: this module's logger at
INFO; the tool passes ``print``, they are part of its output); warnings to the logger.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import taxdet.supertax as supertax
from taxdet.core.files import check_outputs, taxonomy_inputs, write_atomic
from taxdet.detection.evaluation.cohorts import CohortReport, evaluate_cohorts
from taxdet.detection.evaluation.evaluator import evaluate, load_ground_truth
from taxdet.detection.evaluation.groundtruth import GroundTruth
from taxdet.detection.evaluation.inputs import EvalInputError
from taxdet.detection.evaluation.results import EvalResult
from taxdet.detection.evaluation.run_split import split_path
from taxdet.detection.evaluation.scope import Scope, ground_truth_scope, scoped_predictions
from taxdet.detection.model.drawable_boxes import INFO_KEY, warn_dropped

log = logging.getLogger(__name__)
Say = Callable[[str], None]
SKIPPED_KEY = "images_skipped"   # run_info: the ground-truth images that could not be read


@dataclass(frozen=True)
class EvaluateOptions:
    """What to score and how (the flags of ``tools/evaluate.py``). Exactly one of
    ``predictions`` (a COCO results list or scored COCO file) and ``checkpoint`` (predict the
    ground truth's images first)."""

    gt: Path | str
    predictions: Path | str | None = None
    checkpoint: Path | None = None
    taxonomies: list[str] | None = None
    super_taxonomy: str | None = None
    customer: str | None = None
    federated: bool | None = None
    engine: str = "auto"
    # what is scored
    run: Path | None = None
    split: str | None = None
    source_ids: str | None = None
    cohort_by: str | None = None
    # with a checkpoint (images and drawing also with predictions)
    images: Path | None = None
    use_ema: bool = True
    hierarchy_decoding: bool | None = None
    batch_size: int = 8
    workers: int = 2
    device: str = "auto"
    # outputs
    save_predictions: Path | None = None
    fit_thresholds: Path | None = None
    precision: float | None = None
    draw: Path | None = None
    draw_count: int = 6
    draw_score: float = 0.3
    json_out: Path | None = None
    markdown_out: Path | None = None
    plots: Path | None = None
    overwrite: bool = False      # replace existing outputs evaluate.py did not write

    @property
    def images_folder(self) -> Path:
        """The folder the ground truth's file_name entries are relative to."""
        return self.images if self.images is not None else Path(self.gt).parent


@dataclass
class EvaluationRun:
    """The scores (``result``), per cohort when asked, and what was scored (``scope``)."""

    result: EvalResult
    cohorts: CohortReport | None
    scope: Scope
    info: dict = field(default_factory=dict)   # how the detections were made (``run_info``)


def outputs(opts: EvaluateOptions) -> dict[str, Path | None]:
    """Every file this run may write, by the flag that names it."""
    out = {"--json": opts.json_out, "--markdown": opts.markdown_out,
           "--save-predictions": opts.save_predictions, "--fit-thresholds": opts.fit_thresholds,
           "--draw": opts.draw / "predictions.png" if opts.draw else None}
    if opts.plots:
        from taxdet.detection.evaluation.eval_plots import COHORT_METRICS
        names = ["ap_per_class.png", "pr_curves.png"] + (
            [f"cohorts_{m}.png" for m in COHORT_METRICS] if opts.cohort_by else [])
        out.update({f"--plots ({name})": opts.plots / name for name in names})
    return out


def check_run_outputs(opts: EvaluateOptions, taxset: supertax.TaxonomySet | None,
                      images: Sequence[Path] = ()) -> None:
    """The output rule (``taxdet.core.files.check_outputs``) against every file read: ground
    truth, predictions, checkpoint, split, taxonomies and, once known, the images."""
    inputs = [opts.gt, opts.predictions, opts.checkpoint, opts.run and split_path(opts.run)]
    check_outputs(outputs(opts), [p for p in inputs if p] + list(images) + (
        taxonomy_inputs(taxset) if taxset else []), tool="evaluate", overwrite=opts.overwrite,
        drawings={"--draw": opts.draw})


def run_evaluation(opts: EvaluateOptions, say: Say = log.info) -> EvaluationRun:
    """Load taxonomies, the ground truth (one side of a run's split) and the predictions (or
    the model's); write the predictions, drawing and thresholds when asked; evaluate, per
    cohort too."""
    taxset = (supertax.load(opts.taxonomies, super_name=opts.super_taxonomy)
              if opts.taxonomies else None)
    check_run_outputs(opts, taxset)
    scope = ground_truth_scope(opts.gt, opts.run, opts.split)
    read = scope.gt["images"]  # skipped ones included: they were read too
    if opts.checkpoint:
        taxset, truth, results, info, scope = run_checkpoint(opts, taxset, scope)
    else:
        taxset, truth, results = run_predictions(opts, taxset, scope, say)
        info = {"detections": f"predictions {opts.predictions}"}
    if opts.checkpoint or opts.draw:  # the ground truth's images were (or will be) read
        check_run_outputs(opts, taxset, [opts.images_folder / str(im.get("file_name", ""))
                                         for im in read])
    for line in scope.notes:
        say(line)
    for w in scope.warnings:
        log.warning(w)
    side_outputs(opts, truth, results, taxset, scope, say)
    result = evaluate(truth, results, taxset=taxset, federated=opts.federated, engine=opts.engine)
    cohorts = (evaluate_cohorts(scope.gt, results, opts.cohort_by, result, taxset=taxset,
                                engine=opts.engine, source=scope.source)
               if opts.cohort_by else None)
    return EvaluationRun(result, cohorts, scope, info)


def run_predictions(opts: EvaluateOptions, taxset: supertax.TaxonomySet | None, scope: Scope,
                    say: Say = log.info
                    ) -> tuple[supertax.TaxonomySet | None, GroundTruth, list[dict]]:
    """(taxonomies, ground truth, results) of ``opts.predictions``. A ``predict.py`` file
    given without ``--taxonomies`` is scored in its checkpoint's taxonomies, else without the
    labels it says are not predicted (``customer.prelabel_view``)."""
    from taxdet.core.json_files import json_source
    from taxdet.detection.evaluation.customer import drop_not_predicted, prelabel_view
    data, source = json_source(opts.predictions, "predictions", EvalInputError)
    view = prelabel_view(data) if taxset is None else None
    if view is not None and view.taxset is not None:
        taxset = view.taxset
        say(f"{source}: scored in the taxonomies of its checkpoint ({data['info']['checkpoint']})")
    truth = load_ground_truth(scope.gt, taxset=taxset, customer=opts.customer, name=scope.source)
    if view is not None and view.taxset is None and view.not_predicted:
        dropped = drop_not_predicted(truth, view.not_predicted)
        if dropped:
            say(f"{source}: {', '.join(dropped)} not predicted (maps_to: null): left out of "
                "the means")
    return taxset, truth, read_predictions(opts, truth, taxset, scope, (data, source))


def read_predictions(opts: EvaluateOptions, truth: GroundTruth,
                     taxset: supertax.TaxonomySet | None, scope: Scope,
                     loaded: tuple[object, str] | None = None) -> list:
    """The predictions as a COCO results list in the view's ids, checked against the whole
    ground truth and restricted to the scored images. A scored COCO file (a JSON object) is
    matched to the ground truth by file_name and category name. ``loaded``: (the
    predictions, their name) when already read."""
    from taxdet.core.json_files import json_source
    data, source = loaded or json_source(opts.predictions, "predictions", EvalInputError)
    if isinstance(data, dict):
        if opts.source_ids:
            raise EvalInputError(f"{source}: --source-ids applies to a COCO results list; a "
                                 "scored COCO file is matched to the ground truth by file_name")
        from taxdet.detection.prediction.prelabels import results_from_coco
        data, warnings = results_from_coco(data, scope.full, prediction_id(truth, taxset), source)
        for w in warnings:
            log.warning(w)
    return scoped_predictions(scope, data, source, set(truth.prediction_ids),
                              source_ids=opts.source_ids, taxonomies_given=taxset is not None)


def prediction_id(truth: GroundTruth, taxset: supertax.TaxonomySet | None
                  ) -> Callable[[str], int | None]:
    """Category name -> the id ``evaluate`` expects for it (None: a label not predicted)."""
    if truth.view == "customer":
        columns = taxset.label_columns(truth.customer)
        ids = {n: None if j is None else j + 1 for n, j in columns.items()}
    else:
        ids = dict(zip(truth.names, truth.category_ids))

    def lookup(name: str) -> int | None:
        if name not in ids:
            raise EvalInputError(f"predictions: category {name!r} is not a category of the "
                                 f"evaluation ({', '.join(truth.names)})")
        return ids[name]
    return lookup


def own_ids(results: list[dict], truth: GroundTruth) -> tuple[list[dict], dict[int, str]]:
    """(results, category id -> name) in the ground truth's own ids: a customer view's super
    columns become the customer's labels (a label mapped to a parent takes its column)."""
    from taxdet.detection.prediction.customer_labels import relabel
    names = dict(zip(truth.category_ids, truth.names))
    if truth.view == "customer":
        return relabel(results, truth.column_labels), names
    return results, names


def side_outputs(opts: EvaluateOptions, truth: GroundTruth, results: list,
                 taxset: supertax.TaxonomySet | None, scope: Scope, say: Say = log.info) -> None:
    """The saved predictions, the fitted thresholds and the drawing, when asked."""
    if opts.save_predictions:
        saved = own_ids(results, truth)[0]
        write_atomic(opts.save_predictions, json.dumps(saved) + "\n")
        say(f"wrote {opts.save_predictions} ({len(saved)} predictions)")
    if opts.fit_thresholds:
        fit_and_write(opts, truth, results, taxset, say)
    if opts.draw:
        from taxdet.detection.prediction.drawing import save_prediction_grid
        drawn, names = own_ids(results, truth)
        path = save_prediction_grid(drawn, scope.gt, opts.images_folder, names,
                                    opts.draw / "predictions.png", count=opts.draw_count,
                                    score_threshold=opts.draw_score)
        say(f"wrote {path}")


def fit_and_write(opts: EvaluateOptions, truth: GroundTruth, results: list,
                  taxset: supertax.TaxonomySet | None, say: Say = log.info) -> None:
    """Per-class score thresholds (F1-best, or the lowest reaching ``opts.precision``)."""
    from taxdet.detection.evaluation.threshold_fit import fit_thresholds
    taxonomy = truth.customer if truth.view == "customer" else (
        taxset.super.name if truth.view == "super" else None)
    fitted = fit_thresholds(truth, results, federated=opts.federated, precision=opts.precision,
                            taxonomy=taxonomy)
    write_atomic(opts.fit_thresholds, fitted.to_yaml())
    say(f"wrote {opts.fit_thresholds} ({fitted.criterion}: "
        + ", ".join(f"{n} {'-' if t is None else f'{t:.3f}'}"
                    for n, t in fitted.thresholds.items()) + ")")


def run_checkpoint(opts: EvaluateOptions, taxset: supertax.TaxonomySet | None, scope: Scope
                   ) -> tuple[supertax.TaxonomySet, GroundTruth, list[dict], dict, Scope]:
    """Load the model, check the ground truth, predict its (selected) readable images (a
    customer's ground truth: the customer's own top-k, ``customer_scorer``): (taxonomies,
    ground truth, results in super ids, ``run_info``, the scope without the unreadable
    images: ``readable_scope``)."""
    from taxdet.detection.prediction.predictor import load_predictor, predict_images
    predictor, taxset, cfg = load_predictor(opts.checkpoint, use_ema=opts.use_ema,
                                            device=opts.device, taxset=taxset,
                                            hierarchy_decoding=opts.hierarchy_decoding)
    # check the ground truth before the slow part
    truth = load_ground_truth(scope.gt, taxset=taxset, customer=opts.customer, name=scope.source)
    scope, skipped = readable_scope(scope, opts.images_folder, opts.workers)
    if skipped:
        truth = load_ground_truth(scope.gt, taxset=taxset, customer=opts.customer,
                                  name=scope.source)
    scorer, columns = customer_scorer(predictor, taxset, truth)
    results = predict_images(scorer, scope.gt, opts.images_folder, taxset=taxset,
                             image_size=cfg.model.image_size, batch_size=opts.batch_size,
                             workers=opts.workers)
    if columns is not None:
        from taxdet.detection.prediction.customer_topk import to_super_ids
        results = to_super_ids(results, columns)
    warn_dropped(predictor.dropped, f"--checkpoint {opts.checkpoint}", log)
    info = run_info(f"checkpoint {opts.checkpoint}", predictor)
    return taxset, truth, results, {**info, **skipped}, scope


def readable_scope(scope: Scope, folder: Path, workers: int) -> tuple[Scope, dict]:
    """(``scope`` without the ground-truth images that cannot be read, what ``run_info``
    says of them: ``{}`` when none). Each image is decoded once, as ``predict.py`` does
    (``image_inputs.check_files``: truncated, unreadable or too large); the skipped ones are
    counted in one warning and left out of the scored ground truth. A missing file stays an
    error (``image_files``), and so does a ground truth of which no image is readable."""
    from dataclasses import replace

    from taxdet.datasets.images import image_files, read_ground_truth
    from taxdet.detection.evaluation.scope import subset_coco
    from taxdet.detection.prediction.image_inputs import MAX_LISTED, check_files, warn_skipped
    images = scope.gt["images"]
    files = image_files(images, read_ground_truth(scope.gt, folder)[1], scope.source)
    problems = [p for _, p in check_files(list(map(Path, files)), workers)]
    skipped = [p for p in problems if p]
    if not skipped:
        return scope, {}
    if len(skipped) == len(files):
        raise EvalInputError(f"{scope.source}: none of its {len(files)} images can be read:\n  "
                             + "\n  ".join(skipped[:MAX_LISTED]))
    warn_skipped(skipped, len(files), log)
    keep = [img["id"] for img, p in zip(images, problems) if not p]
    return replace(scope, gt=subset_coco(scope.gt, keep)), {SKIPPED_KEY: {
        "images": len(skipped), "of": len(files), "first": skipped[0],
        "note": "unreadable images left out of the scored ground truth"}}


def customer_scorer(predictor, taxset: supertax.TaxonomySet, truth: GroundTruth):
    """(the predictor to score with, its columns or None): in the customer view its own top
    100 over its columns, as ``predict.py --customer`` and its exported model."""
    if truth.view != "customer":
        return predictor, None
    from taxdet.detection.prediction.customer_labels import customer_labels
    from taxdet.detection.prediction.customer_topk import customer_predictor
    columns = tuple(customer_labels(taxset, truth.customer).column_labels())
    if not columns:
        return predictor, None
    return customer_predictor(predictor, columns, predictor.max_det), columns


def run_info(detections: str, predictor) -> dict:
    """How a ``PredictBench`` made the scored detections: ``{"detections", "decoding",
    "degenerate_boxes_dropped": {...}}`` (``taxdet.detection.model.drawable_boxes``)."""
    return {"detections": detections, "decoding": predictor.decoding,
            **predictor.dropped.info()}


def info_markdown(info: dict) -> str:
    """One Markdown line saying how the detections were made (empty without ``info``)."""
    if not info:
        return ""
    parts = [f"Detections: {info['detections']}"]
    if "decoding" in info:
        parts.append(f"decoding {info['decoding']}")
    dropped = info.get(INFO_KEY)
    if dropped:
        parts.append(f"{dropped['boxes']} degenerate boxes dropped on {dropped['images']} "
                     f"images ({dropped['rule']})")
    skipped = info.get(SKIPPED_KEY)
    if skipped:
        parts.append(f"{skipped['images']} of {skipped['of']} images skipped, unreadable, and "
                     "left out of the scored ground truth")
    return "; ".join(parts) + ".\n\n"


def write_outputs(run: EvaluationRun, opts: EvaluateOptions, say: Say = log.info) -> None:
    """The JSON and Markdown results and the plots, when asked."""
    result, cohorts, scope = run.result, run.cohorts, run.scope
    if opts.json_out:
        data = {**result.to_dict(), **({"split": scope.split} if scope.split else {}),
                **({"cohorts": cohorts.to_dict()} if cohorts else {}),
                **({"info": run.info} if run.info else {})}
        write_atomic(opts.json_out, json.dumps(data, indent=2) + "\n")
    if opts.markdown_out:
        write_atomic(opts.markdown_out, info_markdown(run.info) + result.to_markdown()
                     + (f"\n{cohorts.to_markdown()}" if cohorts else ""))
    if opts.plots:
        from taxdet.detection.evaluation.eval_plots import save_cohort_plots, save_plots
        paths = save_plots(result, opts.plots)
        paths += save_cohort_plots(cohorts, opts.plots) if cohorts else []
        for path in paths:
            say(f"wrote {path}")
