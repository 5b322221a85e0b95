"""One lint run, as ``tools/lint_labels.py`` does it: detections from a checkpoint (one side of
a run's split) or from K cross-fitted models, the checks, the JSON and Markdown reports.

    opts = LintOptions(run=Path("runs/x"), out=Path("runs/x/lint_val.json"),
                       markdown=Path("runs/x/lint_val.md"))
    result, samples, taxset = run_lint(opts)   # reports written, warnings logged
    print(summary_text(result))
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from taxdet.core.errors import ConfigError, InputNotFoundError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class LintOptions:
    """The flags of ``tools/lint_labels.py``: where the detections come from (``checkpoint``,
    ``run`` + ``split``, or ``cross_fit`` folds), what is linted and what is written."""

    out: Path
    markdown: Path
    checkpoint: Path | None = None
    run: Path | None = None
    split: str = "val"
    cross_fit: int | None = None
    taxonomies: list[str] | None = None
    super_taxonomy: str | None = None
    data: Path | None = None
    customer: str | None = None
    allow_unmapped: bool = False
    top: int = 100
    min_score: float = 0.3
    config: Path | None = None
    steps: int = 0
    crossfit_dir: Path | None = None
    overwrite: bool = False
    batch_size: int = 8
    device: str = "auto"
    workers: int = 2
    use_ema: bool = True
    progress: bool = True
    draw: Path | None = None      # the folder of draw_file (drawn by tools/lint_labels.py)
    draw_file: str = "lint_top_issues.png"

    @property
    def model(self) -> Path | None:
        """The checkpoint whose detections are linted (``run/last.pt`` with only ``run``)."""
        if self.checkpoint is None and self.run is not None:
            return self.run / "last.pt"
        return self.checkpoint


def require(path: Path | None, flag: str, what: str = "file") -> None:
    """``InputNotFoundError`` naming ``flag`` and ``path`` when it does not exist."""
    if path is None:
        return
    ok = path.is_dir() if what == "folder" else path.is_file()
    if not ok:
        raise InputNotFoundError(f"{flag} {path}: {what} not found")


def check_inputs(opts: LintOptions) -> None:
    require(opts.run, "--run", "folder")
    if opts.run is not None:
        require(opts.run / "split.json", "--run")
    require(opts.model, "--checkpoint")
    require(opts.config, "--config")
    require(opts.data, "--data")


def read_config_tree(path: Path | None) -> dict:
    """The --config YAML as a nested dict ({} without one)."""
    if path is None:
        return {}
    try:
        tree = yaml.safe_load(path.read_text())
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"--config {path}: cannot read it ({exc})") from None
    if tree is not None and not isinstance(tree, dict):
        raise ConfigError(f"--config {path}: expected a mapping of config sections")
    return tree or {}


def run_lint(opts: LintOptions):
    """Check the inputs, make the detections, lint, log the warnings and write the JSON and
    Markdown reports: ``(LintResult, the linted samples, taxonomies)``."""
    from taxdet.detection.linting import LintConfig, lint_samples
    from taxdet.detection.linting.lint_report import write_json, write_markdown
    from taxdet.detection.linting.model_trust import ModelReport
    from taxdet.detection.model.drawable_boxes import warn_dropped
    check_inputs(opts)
    models = ModelReport()
    if opts.cross_fit is not None:
        taxset, samples, preds, note, warnings = cross_fit_detections(opts, models)
    else:
        taxset, samples, preds, note, warnings = checkpoint_detections(opts, models)
    check_output_paths(opts, taxset, samples)  # the images too, before anything is written
    result = lint_samples(samples, preds, taxset, LintConfig(min_score=opts.min_score))
    result.predictions, result.warnings = note, warnings + models.warnings()
    result.info = models.info()
    for warning in result.warnings:
        log.warning(warning)
    warn_dropped(models.dropped, note, log)
    write_json(result, opts.out, opts.top)
    write_markdown(result, opts.markdown, opts.top)
    return result, samples, taxset


def load_taxonomies(paths: list[str], super_name: str | None):
    import taxdet.supertax as supertax
    return supertax.load(paths, super_name=super_name)


def training_taxonomies(opts: LintOptions, cfg):
    """``--taxonomies``, else the taxonomy files the checkpoint was trained with: they name
    the customers' annotation files, whose own image and annotation ids the issues carry.
    Files that cannot be read here are a ``ConfigError`` naming ``--taxonomies``."""
    from taxdet.core.errors import InputError
    if opts.taxonomies:
        return load_taxonomies(opts.taxonomies, opts.super_taxonomy)
    paths = [str(p) for p in cfg.data.taxonomies]
    try:
        return load_taxonomies(paths, opts.super_taxonomy or cfg.data.super_taxonomy)
    except InputError as exc:
        raise ConfigError(f"--checkpoint {opts.model}: the taxonomy files it was trained with "
                          f"({' '.join(paths)}) cannot be read here ({str(exc).splitlines()[0]}); "
                          "they name the customers' annotation files and ids: give "
                          "--taxonomies PATH") from None


def checkpoint_detections(opts: LintOptions, models):
    """(taxset, samples, detections, how they were made, warnings) from a checkpoint;
    ``models`` (a ``ModelReport``) collects its validation AP and dropped boxes."""
    from taxdet.detection.linting.predictions import load_dataset, predict_samples
    from taxdet.detection.prediction.predictor import load_predictor
    predictor, ckpt_taxset, cfg = load_predictor(opts.model, use_ema=opts.use_ema,
                                                 device=opts.device)
    taxset = training_taxonomies(opts, cfg)
    if taxset.hash != ckpt_taxset.hash:
        raise ConfigError(f"--checkpoint {opts.model}: trained for other taxonomies than "
                          f"{' '.join(map(str, opts.taxonomies or cfg.data.taxonomies))} (hash "
                          f"{ckpt_taxset.hash} vs {taxset.hash}); give --taxonomies matching it")
    check_output_paths(opts, taxset)
    super_json = opts.data or (None if opts.taxonomies else cfg.data.super_json)
    samples, note, warning = linted_images(
        opts, load_dataset(taxset, super_json, opts.allow_unmapped).samples, taxset)
    preds = predict_samples(predictor, samples, taxset, cfg.model.image_size, opts.batch_size,
                            opts.workers, opts.progress)
    models.add(opts.model, predictor)
    return taxset, samples, preds, note, [warning] if warning else []


def linted_images(opts: LintOptions, samples: list, taxset) -> tuple[list, str, str]:
    """(the images to lint: the run's split side, of the customer; how the detections are
    made; the in-sample warning or "")."""
    from taxdet.detection.evaluation.run_split import read_split
    from taxdet.detection.linting.predictions import (
        in_sample_warning,
        select_customer,
        select_split,
    )
    note = f"checkpoint {opts.model}"
    if opts.run is None:
        samples = select_customer(samples, taxset, opts.customer)
        return samples, note, in_sample_warning(opts.model, samples)
    samples = select_split(samples, read_split(opts.run / "split.json"), opts.split)
    warning = "" if opts.split == "val" else (
        f"--split {opts.split}: these images include the run's training images; detections on "
        "them are in-sample and hide the errors the model learned")
    return (select_customer(samples, taxset, opts.customer),
            f"{note}, the {opts.split} split of {opts.run}", warning)


def cross_fit_detections(opts: LintOptions, models):
    """(taxset, samples, detections, how they were made, warnings) by cross-fitting;
    ``models`` (a ``ModelReport``) collects the fold models' validation APs and dropped
    boxes."""
    from taxdet.detection.linting.crossfit import CrossFitConfig, cross_fit_predictions
    from taxdet.detection.linting.predictions import load_dataset, select_customer
    base = read_config_tree(opts.config)
    data = base.get("data") if isinstance(base.get("data"), dict) else {}
    paths = opts.taxonomies or data.get("taxonomies") or ["taxonomies/driving"]
    paths = [paths] if isinstance(paths, str) else [str(p) for p in paths]
    taxset = load_taxonomies(paths, opts.super_taxonomy or data.get("super_taxonomy"))
    check_output_paths(opts, taxset)
    dataset = load_dataset(taxset, opts.data, opts.allow_unmapped)
    samples = select_customer(dataset.samples, taxset, opts.customer)
    folder = opts.crossfit_dir or opts.out.parent / "crossfit"
    cfg = CrossFitConfig(opts.cross_fit, str(folder), opts.steps, opts.overwrite,
                         opts.batch_size, opts.workers, opts.progress)
    preds = cross_fit_predictions(dataset, samples, base, paths, cfg, models)
    return taxset, samples, preds, f"cross-fit: {opts.cross_fit} models in {folder}", []


def check_output_paths(opts: LintOptions, taxset, samples: list = ()) -> None:
    """The output rule (``taxdet.core.files.check_outputs``) against every file read; the
    images once the linted ``samples`` are known."""
    from taxdet.core.files import check_outputs, taxonomy_inputs
    inputs = taxonomy_inputs(taxset) + [p for p in (opts.model, opts.data, opts.config) if p]
    split = [opts.run / "split.json"] if opts.run is not None else []
    outputs = {"--out": opts.out, "--markdown": opts.markdown,
               "--draw": opts.draw / opts.draw_file if opts.draw else None}
    check_outputs(outputs, inputs + split + [s.file for s in samples], tool="lint_labels",
                  overwrite=opts.overwrite, drawings={"--draw": opts.draw})
