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
from collections.abc import Callable
from dataclasses import dataclass
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

log = logging.getLogger(__name__)
Say = Callable[[str], None]


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


def run_evaluation(opts: EvaluateOptions, say: Say = log.info) -> EvaluationRun:
    """Load taxonomies, the ground truth (one side of a run's split) and the predictions (or
    the model's); write the predictions, drawing and thresholds when asked; evaluate, per
    cohort too."""
    taxset = (supertax.load(opts.taxonomies, super_name=opts.super_taxonomy)
              if opts.taxonomies else None)
    inputs = [opts.gt, opts.predictions, opts.checkpoint, opts.run and split_path(opts.run)]
    check_outputs(outputs(opts), [p for p in inputs if p] + (
        taxonomy_inputs(taxset) if taxset else []))
    scope = ground_truth_scope(opts.gt, opts.run, opts.split)
    if opts.checkpoint:
        taxset, truth, results = run_checkpoint(opts, taxset, scope)
    else:
        truth = load_ground_truth(scope.gt, taxset=taxset, customer=opts.customer,
                                  name=scope.source)
        results = read_predictions(opts, truth, taxset, scope)
    for line in scope.notes:
        say(line)
    for w in scope.warnings:
        log.warning(w)
    side_outputs(opts, truth, results, taxset, scope, say)
    result = evaluate(truth, results, taxset=taxset, federated=opts.federated, engine=opts.engine)
    cohorts = (evaluate_cohorts(scope.gt, results, opts.cohort_by, result, taxset=taxset,
                                engine=opts.engine, source=scope.source)
               if opts.cohort_by else None)
    return EvaluationRun(result, cohorts, scope)


def read_predictions(opts: EvaluateOptions, truth: GroundTruth,
                     taxset: supertax.TaxonomySet | None, scope: Scope) -> list:
    """The predictions as a COCO results list in the view's ids, checked against the whole
    ground truth and restricted to the scored images. A scored COCO file (a JSON object) is
    matched to the ground truth by file_name and category name."""
    from taxdet.core.json_files import json_source
    data, source = json_source(opts.predictions, "predictions", EvalInputError)
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
                   ) -> tuple[supertax.TaxonomySet, GroundTruth, list[dict]]:
    """Load the model, check the ground truth, predict its (selected) images: (taxonomies,
    ground truth, results in super ids)."""
    from taxdet.detection.prediction.predictor import load_predictor, predict_images
    predictor, taxset, cfg = load_predictor(opts.checkpoint, use_ema=opts.use_ema,
                                            device=opts.device, taxset=taxset,
                                            hierarchy_decoding=opts.hierarchy_decoding)
    # check the ground truth before the slow part
    truth = load_ground_truth(scope.gt, taxset=taxset, customer=opts.customer, name=scope.source)
    results = predict_images(predictor, scope.gt, opts.images_folder, taxset=taxset,
                             image_size=cfg.model.image_size, batch_size=opts.batch_size,
                             workers=opts.workers)
    return taxset, truth, results


def write_outputs(run: EvaluationRun, opts: EvaluateOptions, say: Say = log.info) -> None:
    """The JSON and Markdown results and the plots, when asked."""
    result, cohorts, scope = run.result, run.cohorts, run.scope
    if opts.json_out:
        data = {**result.to_dict(), **({"split": scope.split} if scope.split else {}),
                **({"cohorts": cohorts.to_dict()} if cohorts else {})}
        write_atomic(opts.json_out, json.dumps(data, indent=2) + "\n")
    if opts.markdown_out:
        write_atomic(opts.markdown_out, result.to_markdown()
                     + (f"\n{cohorts.to_markdown()}" if cohorts else ""))
    if opts.plots:
        from taxdet.detection.evaluation.eval_plots import save_cohort_plots, save_plots
        paths = save_plots(result, opts.plots)
        paths += save_cohort_plots(cohorts, opts.plots) if cohorts else []
        for path in paths:
            say(f"wrote {path}")
