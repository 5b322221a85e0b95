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

from taxdet.core.errors import run_cli
from taxdet.tools import cli_flags as flags

DRAW_FILE = "lint_top_issues.png"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lint_labels.py", description=__doc__.split("\n")[0])
    src = p.add_argument_group("detections (one of --checkpoint / --run, or --cross-fit)")
    flags.add_checkpoint(src, "its detections are used (with --run: instead of RUN/last.pt)")
    src.add_argument("--run", type=Path, metavar="DIR", help="a training run folder: its "
                     "last.pt and its split.json, to lint only the --split side")
    src.add_argument("--split", choices=("val", "train", "all"),
                     help="with --run: the side of split.json to lint (default: val)")
    src.add_argument("--cross-fit", type=int, metavar="K", help="train K models, each on "
                     "the images outside one fold, and lint each fold with its model")
    data = p.add_argument_group("images and labels")
    flags.add_taxonomies(data, "their data: entries are linted (default: the checkpoint's "
                         "training config's; cross-fit: the --config's, else taxonomies/driving)")
    data.add_argument("--super-taxonomy", metavar="NAME", help="the super-taxonomy to use "
                      "when the files hold several (default: the only one)")
    data.add_argument("--data", type=Path, metavar="JSON", help="a super.json to lint instead "
                      "of merging the taxonomies' data (default: merge)")
    data.add_argument("--customer", metavar="NAME", help="lint only this customer's images "
                      "(default: every customer)")
    data.add_argument("--allow-unmapped", action="store_true", help="drop annotations of "
                      "categories the taxonomy does not name instead of failing")
    out = p.add_argument_group("output")
    flags.add_out(out, "the issues as JSON", shown="RUN/lint_<split>.json with --run, else "
                  "lint_issues.json")
    flags.add_markdown(out, "the summary per customer and issue type, then the top issues,",
                       shown="--out with .md")
    flags.add_draw(out, f"{DRAW_FILE}, a grid of the top issues drawn on their images,")
    out.add_argument("--draw-count", type=int, default=12, metavar="N",
                     help="issues in the --draw grid, at most 48 (default: %(default)s)")
    out.add_argument("--top", type=int, default=100, metavar="N", help="issues listed in the "
                     "JSON and Markdown, best first; 0: all (default: %(default)s)")
    out.add_argument("--min-score", type=float, default=0.3, metavar="X",
                     help="issues scoring lower are not reported (default: %(default)s)")
    _cross_fit_arguments(p)
    run = p.add_argument_group("running")
    run.add_argument("--batch-size", type=int, default=8, metavar="N",
                     help="images per forward pass (default: %(default)s)")
    flags.add_device(run, "for prediction")
    flags.add_workers(run, "image-loading processes for prediction")
    flags.add_no_ema(run)
    run.add_argument("--no-progress", action="store_true", help="no progress bars")
    flags.verbosity(p)
    return p


def _cross_fit_arguments(p: argparse.ArgumentParser) -> None:
    fit = p.add_argument_group("cross-fit training")
    fit.add_argument("--config", type=Path, metavar="YAML", help="training config of the fold "
                     "models, as tools/train.py --config reads it (default: training defaults)")
    fit.add_argument("--steps", type=int, default=0, metavar="N", help="training steps per "
                     "fold model; 0: the config's (default: %(default)s)")
    fit.add_argument("--crossfit-dir", type=Path, metavar="DIR", help="where the fold runs "
                     "go (default: a crossfit folder beside --out)")
    flags.add_overwrite(fit, "fold runs already in --crossfit-dir, and existing output files "
                       "that lint_labels.py did not write")


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


def options(args: argparse.Namespace):
    """The library's ``LintOptions`` from the parsed flags."""
    from taxdet.detection.linting.lint_run import LintOptions
    return LintOptions(
        out=args.out, markdown=args.markdown, checkpoint=args.checkpoint, run=args.run,
        split=args.split, cross_fit=args.cross_fit, taxonomies=args.taxonomies,
        super_taxonomy=args.super_taxonomy, data=args.data, customer=args.customer,
        allow_unmapped=args.allow_unmapped, top=args.top, min_score=args.min_score,
        config=args.config, steps=args.steps, crossfit_dir=args.crossfit_dir,
        overwrite=args.overwrite, batch_size=args.batch_size, device=args.device,
        workers=args.workers, use_ema=not args.no_ema, progress=not args.no_progress,
        draw=args.draw, draw_file=DRAW_FILE)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flags.start_logging(args)
    return run_cli(lambda: run(args))


def run(args: argparse.Namespace) -> int:
    """Lint, print the summary and what was written; draw the top issues when asked."""
    from taxdet.detection.linting.lint_report import summary_text
    from taxdet.detection.linting.lint_run import run_lint
    result, samples, taxset = run_lint(options(args))
    print(summary_text(result))
    print(f"wrote {args.out} and {args.markdown}")
    if args.draw is not None and not result.issues:
        print(f"no issue: nothing drawn into {args.draw}")
    elif args.draw is not None:
        from taxdet.detection.linting import customer_views
        from taxdet.detection.linting.issue_grid import save_issue_grid
        png = save_issue_grid(result.issues, {s.image_id: s for s in samples},
                              customer_views(taxset), args.draw / DRAW_FILE, args.draw_count)
        print(f"wrote {png}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
