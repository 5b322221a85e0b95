"""Find likely annotation errors per customer from a model's detections, aware of each taxonomy.

    python tools/lint_labels.py --run runs/demo --split val          # after tools/train.py
    python tools/lint_labels.py --checkpoint CKPT [--taxonomies PATH ...] [--customer NAME]
    python tools/lint_labels.py --cross-fit K --taxonomies PATH ... [--config YAML] [--steps N]
        [--out issues.json] [--markdown issues.md] [--draw DIR] [--top N] [--min-score X]

Issues: missing boxes (only of classes the image's customer labels, coarsely too), wrong
classes (only contradictions the customer could have labeled), badly placed boxes and
duplicate boxes; ranked by score, in the customer's own label names. Detections should be
out-of-sample: the validation split of a run (``--run``), or K cross-fitted models
(``--cross-fit``); a checkpoint's detections on its own training images hide the errors it
learned (a warning says so). Exit 0 done, 1 bad input, 2 usage error.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import yaml

from taxdet.core.errors import ConfigError, InputNotFoundError, run_cli

DRAW_FILE = "lint_top_issues.png"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lint_labels.py", description=__doc__.split("\n")[0])
    src = p.add_argument_group("detections (one of --checkpoint / --run, or --cross-fit)")
    src.add_argument("--checkpoint", type=Path, metavar="CKPT", help="training checkpoint "
                     "whose detections are used (with --run: instead of RUN/last.pt)")
    src.add_argument("--run", type=Path, metavar="DIR", help="a training run folder: its "
                     "last.pt and its split.json, to lint only the --split side")
    src.add_argument("--split", choices=("val", "train", "all"),
                     help="with --run: the side of split.json to lint (default: val)")
    src.add_argument("--cross-fit", type=int, metavar="K", help="train K models, each on "
                     "the images outside one fold, and lint each fold with its model")
    data = p.add_argument_group("images and labels")
    data.add_argument("--taxonomies", nargs="+", metavar="PATH", help="taxonomy YAMLs whose "
                      "data: entries are linted (default: the checkpoint's training config's; "
                      "cross-fit: the --config's, else taxonomies/driving)")
    data.add_argument("--super-taxonomy", metavar="NAME", help="the super-taxonomy to use "
                      "when the files hold several (default: the only one)")
    data.add_argument("--data", type=Path, metavar="JSON", help="a super.json to lint instead "
                      "of merging the taxonomies' data (default: merge)")
    data.add_argument("--customer", metavar="NAME", help="lint only this customer's images "
                      "(default: every customer)")
    data.add_argument("--allow-unmapped", action="store_true", help="drop annotations of "
                      "categories the taxonomy does not name instead of failing")
    out = p.add_argument_group("output")
    out.add_argument("--out", type=Path, metavar="JSON", help="issues as JSON (default: "
                     "RUN/lint_<split>.json with --run, else lint_issues.json)")
    out.add_argument("--markdown", type=Path, metavar="MD", help="the summary per customer "
                     "and issue type, then the top issues (default: --out with .md)")
    out.add_argument("--draw", type=Path, metavar="DIR", help=f"also write DIR/{DRAW_FILE}, a "
                     "grid of the top issues drawn on their images (default: no drawing)")
    out.add_argument("--draw-count", type=int, default=12, metavar="N",
                     help="issues in the --draw grid, at most 48 (default: %(default)s)")
    out.add_argument("--top", type=int, default=100, metavar="N", help="issues listed in the "
                     "JSON and Markdown, best first; 0: all (default: %(default)s)")
    out.add_argument("--min-score", type=float, default=0.3, metavar="X",
                     help="issues scoring lower are not reported (default: %(default)s)")
    fit = p.add_argument_group("cross-fit training")
    fit.add_argument("--config", type=Path, metavar="YAML", help="training config of the fold "
                     "models, as tools/train.py --config reads it (default: training defaults)")
    fit.add_argument("--steps", type=int, default=0, metavar="N", help="training steps per "
                     "fold model; 0: the config's (default: %(default)s)")
    fit.add_argument("--crossfit-dir", type=Path, metavar="DIR", help="where the fold runs "
                     "go (default: a crossfit folder beside --out)")
    fit.add_argument("--overwrite", action="store_true", help="replace fold runs already in "
                     "--crossfit-dir (else refused)")
    run = p.add_argument_group("running")
    run.add_argument("--batch-size", type=int, default=8, metavar="N",
                     help="images per forward pass (default: %(default)s)")
    run.add_argument("--device", default="auto",
                     help="auto | cpu | cuda | cuda:N, for prediction (default: %(default)s)")
    run.add_argument("--workers", type=int, default=0, metavar="N",
                     help="image-loading processes for prediction (default: %(default)s)")
    run.add_argument("--no-ema", action="store_true",
                     help="use the raw weights, not the EMA's (default: EMA when saved)")
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if args.cross_fit is not None and (args.checkpoint or args.run):
        p.error("--cross-fit trains its own models: give it without --checkpoint and --run")
    if args.cross_fit is None and not (args.checkpoint or args.run):
        p.error("give --checkpoint CKPT, --run DIR or --cross-fit K")
    if args.split is not None and args.run is None:
        p.error("--split needs --run (the run folder whose split.json it reads)")
    args.split = args.split or "val"
    if args.cross_fit is not None and args.cross_fit < 2:
        p.error(f"--cross-fit {args.cross_fit}: needs at least 2 folds")
    if not 0 <= args.min_score <= 1:
        p.error(f"--min-score {args.min_score}: expected a value in [0, 1]")
    if args.top < 0 or args.steps < 0 or args.workers < 0:
        p.error("--top, --steps and --workers must be >= 0")
    if args.batch_size < 1 or not 1 <= args.draw_count <= 48:
        p.error("--batch-size must be >= 1 and --draw-count in [1, 48]")
    if args.out is None:
        args.out = args.run / f"lint_{args.split}.json" if args.run else Path("lint_issues.json")
    if args.markdown is None:
        args.markdown = args.out.with_suffix(".md")
    return args


def require(path: Path | None, flag: str, what: str = "file") -> None:
    """``InputNotFoundError`` naming ``flag`` and ``path`` when it does not exist."""
    if path is None:
        return
    ok = path.is_dir() if what == "folder" else path.is_file()
    if not ok:
        raise InputNotFoundError(f"{flag} {path}: {what} not found")


def check_inputs(args: argparse.Namespace) -> None:
    require(args.run, "--run", "folder")
    if args.run is not None:
        require(args.run / "split.json", "--run")
        if args.checkpoint is None:
            args.checkpoint = args.run / "last.pt"
    require(args.checkpoint, "--checkpoint")
    require(args.config, "--config")
    require(args.data, "--data")


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


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    return run_cli(lambda: run(args))


def run(args: argparse.Namespace) -> int:
    check_inputs(args)
    if args.cross_fit is not None:
        taxset, samples, preds, note, warnings = cross_fit_detections(args)
    else:
        taxset, samples, preds, note, warnings = checkpoint_detections(args)
    from taxdet.detection.linting import LintConfig, lint_samples
    result = lint_samples(samples, preds, taxset, LintConfig(min_score=args.min_score))
    result.predictions, result.warnings = note, warnings
    write_outputs(args, result, samples, taxset)
    return 0


def load_taxonomies(paths: list[str], super_name: str | None):
    import taxdet.supertax as supertax
    return supertax.load(paths, super_name=super_name)


def checkpoint_detections(args: argparse.Namespace):
    """(taxset, samples, detections, how they were made, warnings) from a checkpoint."""
    from taxdet.detection.linting.predictions import load_dataset, predict_samples
    from taxdet.detection.prediction.predictor import load_predictor
    predictor, ckpt_taxset, cfg = load_predictor(args.checkpoint, use_ema=not args.no_ema,
                                                 device=args.device)
    taxset = load_taxonomies(args.taxonomies or cfg.data.taxonomies,
                             args.super_taxonomy or cfg.data.super_taxonomy)
    if taxset.hash != ckpt_taxset.hash:
        raise ConfigError(f"--checkpoint {args.checkpoint}: trained for other taxonomies than "
                          f"{' '.join(map(str, args.taxonomies or cfg.data.taxonomies))} (hash "
                          f"{ckpt_taxset.hash} vs {taxset.hash}); give --taxonomies matching it")
    check_output_paths(args, taxset)
    super_json = args.data or (None if args.taxonomies else cfg.data.super_json)
    samples, note, warning = linted_images(
        args, load_dataset(taxset, super_json, args.allow_unmapped).samples, taxset)
    preds = predict_samples(predictor, samples, taxset, cfg.model.image_size, args.batch_size,
                            args.workers, not args.no_progress)
    return taxset, samples, preds, note, [warning] if warning else []


def linted_images(args: argparse.Namespace, samples: list, taxset) -> tuple[list, str, str]:
    """(the images to lint: the --run's --split side, of --customer; how the detections are
    made; the in-sample warning or "")."""
    from taxdet.detection.evaluation.run_split import read_split
    from taxdet.detection.linting.predictions import (
        in_sample_warning,
        select_customer,
        select_split,
    )
    note = f"checkpoint {args.checkpoint}"
    if args.run is None:
        samples = select_customer(samples, taxset, args.customer)
        return samples, note, in_sample_warning(args.checkpoint, samples)
    samples = select_split(samples, read_split(args.run / "split.json"), args.split)
    warning = "" if args.split == "val" else (
        f"--split {args.split}: these images include the run's training images; detections on "
        "them are in-sample and hide the errors the model learned")
    return (select_customer(samples, taxset, args.customer),
            f"{note}, the {args.split} split of {args.run}", warning)


def cross_fit_detections(args: argparse.Namespace):
    """(taxset, samples, detections, how they were made, warnings) by cross-fitting."""
    from taxdet.detection.linting.crossfit import CrossFitConfig, cross_fit_predictions
    from taxdet.detection.linting.predictions import load_dataset, select_customer
    base = read_config_tree(args.config)
    data = base.get("data") if isinstance(base.get("data"), dict) else {}
    paths = args.taxonomies or data.get("taxonomies") or ["taxonomies/driving"]
    paths = [paths] if isinstance(paths, str) else [str(p) for p in paths]
    taxset = load_taxonomies(paths, args.super_taxonomy or data.get("super_taxonomy"))
    check_output_paths(args, taxset)
    dataset = load_dataset(taxset, args.data, args.allow_unmapped)
    samples = select_customer(dataset.samples, taxset, args.customer)
    folder = args.crossfit_dir or args.out.parent / "crossfit"
    cfg = CrossFitConfig(args.cross_fit, str(folder), args.steps, args.overwrite,
                         args.batch_size, args.workers, not args.no_progress)
    preds = cross_fit_predictions(dataset, samples, base, paths, cfg)
    return taxset, samples, preds, f"cross-fit: {args.cross_fit} models in {folder}", []


def check_output_paths(args: argparse.Namespace, taxset) -> None:
    from taxdet.core.files import check_outputs, taxonomy_inputs
    inputs = taxonomy_inputs(taxset) + [p for p in (args.checkpoint, args.data, args.config) if p]
    check_outputs({"--out": args.out, "--markdown": args.markdown}, inputs)


def write_outputs(args: argparse.Namespace, result, samples: list, taxset) -> None:
    """Warnings (stderr), JSON, Markdown, the summary and, with --draw, the grid."""
    from taxdet.detection.linting import customer_views
    from taxdet.detection.linting.lint_report import summary_text, write_json, write_markdown
    for warning in result.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    write_json(result, args.out, args.top)
    write_markdown(result, args.markdown, args.top)
    print(summary_text(result))
    print(f"wrote {args.out} and {args.markdown}")
    if args.draw is not None and not result.issues:
        print(f"no issue: nothing drawn into {args.draw}")
    elif args.draw is not None:
        from taxdet.detection.linting.issue_grid import save_issue_grid
        png = save_issue_grid(result.issues, {s.image_id: s for s in samples},
                              customer_views(taxset), args.draw / DRAW_FILE, args.draw_count)
        print(f"wrote {png}")


if __name__ == "__main__":
    sys.exit(main())
