"""The taxonomy ablation over seeds: mean ± std of mAP and per-class AP for every variant.

    python -m benchmarks.seed_ablation --seeds 0 1 2 --steps 300 --output runs/ablation
    python -m benchmarks.seed_ablation --world warehouse --seeds 0 1 2 --steps 300

Two synthetic worlds (``--world``): ``driving`` (street scenes, ``taxonomies/driving``) and
``warehouse`` (shelf racks, ``taxonomies/warehouse``: a parent no customer labels, a parent one
customer labels, leaves another customer labels under their parent's name). A world's
training data is generated where its taxonomies expect it if absent (seed 0, the world's
default size), and so is its test split under ``--demo-data``.

Variants (one recipe each in ``benchmarks/recipes/ablation/``, all the same model, data order
and step budget): ``naive`` (plain merge), ``strict`` (labeled columns only), ``certain``
(+ every certain cell, the default), ``coarse`` (+ the coarse-children set loss), ``pseudo``
(+ EMA pseudo-labels from step 60), ``pseudo_pos`` (pseudo-positives only), ``pseudo_late``
(pseudo-labels from step 100), ``separate`` (one head pair per taxonomy) and ``oracle`` (every
object labeled). Each run is scored on the fully labeled test split of ``--demo-data`` three
times from one forward pass (one training, three decodings): ``flat`` (each column its own
score, ``--decoding own``), ``hierarchy`` (a parent scored as the max over itself and its
descendants) and ``coverage`` (hierarchy with the run's decoding plan: a column that got no or
too few background negatives scored from its descendants only; the default). Finished runs
and their scores are reused (a run folder is ``<variant>-<masked|full>-s<seed>``, as
``time_to_accuracy.py`` names them). Writes ``seed_ablation.md``, ``seed_ablation.json`` and
``seed_ablation.png`` (error bars = std).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

# benchmarks/ is not installed: its library part (benchmarks.ablation) comes from the checkout
import taxdet.supertax as supertax
from benchmarks.ablation import recipe_config, score_decodings, write_oracle_taxonomies
from taxdet.core.files import write_atomic
from taxdet.core.logs import configure_logging
from taxdet.datasets.demo import DemoConfig, generate_demo
from taxdet.datasets.warehouse_demo import generate_warehouse, warehouse_config
from taxdet.detection.engine import checkpoint
from taxdet.detection.training.trainer import Trainer

RECIPES = Path(__file__).parent / "recipes" / "ablation"
VARIANTS = {"naive": ("naive.yaml", "masked"), "strict": ("strict.yaml", "masked"),
            "certain": ("certain.yaml", "masked"), "coarse": ("coarse.yaml", "masked"),
            "pseudo": ("pseudo.yaml", "masked"), "pseudo_pos": ("pseudo_pos.yaml", "masked"),
            "pseudo_late": ("pseudo_late.yaml", "masked"),
            "pseudo_fit": ("pseudo_fit.yaml", "masked"),
            "separate": ("separate.yaml", "masked"), "oracle": ("base.yaml", "full")}
MODES = ("flat", "hierarchy", "coverage")   # scoring modes: ablation.SCORING_DECODINGS
MASKED = ("strict", "certain", "coarse", "pseudo", "pseudo_pos", "pseudo_late", "pseudo_fit")


@dataclass(frozen=True)
class World:
    """A synthetic ablation world: its taxonomies, where their data lives, its generator."""

    taxonomies: str
    test_data: str         # default --demo-data
    output: str            # default --output
    generate: Callable     # (out, taxset, config) -> summaries
    config: Callable       # (**overrides) -> DemoConfig with the world's defaults


WORLDS = {
    "driving": World("taxonomies/driving", "data/ablation", "runs/ablation", generate_demo,
                     DemoConfig),
    "warehouse": World("taxonomies/warehouse", "data/ablation_warehouse",
                       "runs/ablation_warehouse", generate_warehouse, warehouse_config),
}


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--world", choices=list(WORLDS), default="driving",
                   help="which synthetic world; sets the defaults of --taxonomies, --demo-data "
                        "and --output (default: driving)")
    p.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                   help="which variants (default: all)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="training seeds (default: 0 1 2)")
    p.add_argument("--steps", type=int, default=150, help="training steps (default: 150)")
    p.add_argument("--taxonomies", nargs="+",
                   help="the customer taxonomies (default: the world's, e.g. taxonomies/driving)")
    p.add_argument("--demo-data",
                   help="folder whose test/ split scores the runs; generated with "
                        "--test-images images if absent (default: data/ablation, "
                        "data/ablation_warehouse)")
    p.add_argument("--test-images", type=int, default=500,
                   help="test images when the demo data is generated (default: 500)")
    p.add_argument("--output", help="runs and tables (default: runs/ablation, "
                   "runs/ablation_warehouse)")
    p.add_argument("--image-size", type=int, help="override the recipes' image size (smoke "
                   "tests; the ablation uses the recipes' 256)")
    p.add_argument("--batch-size", type=int, help="override the recipes' batch size")
    p.add_argument("--workers", type=int, help="override the data loader workers")
    p.add_argument("--finished-only", action="store_true",
                   help="train nothing: tables of the runs already finished")
    args = p.parse_args(argv)
    world = WORLDS[args.world]
    args.taxonomies = args.taxonomies or [world.taxonomies]
    args.demo_data = args.demo_data or world.test_data
    args.output = args.output or world.output
    return args


def overrides(args: argparse.Namespace) -> dict:
    """The recipe fields the command line overrides: ``{section: {field: value}}``."""
    out: dict = {}
    for section, field, value in (("model", "image_size", args.image_size),
                                  ("optim", "batch_size", args.batch_size),
                                  ("data", "workers", args.workers)):
        if value is not None:
            out.setdefault(section, {})[field] = value
    return out


def ensure_data(args: argparse.Namespace, taxset) -> Path:
    """Generate what is missing: the world's training data (if the taxonomies are the world's
    own: in the folder their ``data:`` entries point into, ``<root>/<customer>/``) and the test
    split under ``--demo-data``. Returns the test ground truth."""
    world = WORLDS[args.world]
    missing = [Path(s.annotations) for t in taxset.taxonomies for s in t.data
               if s.annotations and not Path(s.annotations).is_file()]
    if missing and args.taxonomies == [world.taxonomies]:
        root = missing[0].parents[1]
        print(f"generating the {args.world} training data in {root}", flush=True)
        world.generate(root, taxset, world.config())
    test_gt = Path(args.demo_data) / "test" / "annotations.json"
    if not test_gt.is_file():
        world.generate(Path(args.demo_data), taxset, world.config(test_images=args.test_images))
    return test_gt


def trained(run_dir: Path, steps: int) -> bool:
    last = run_dir / "last.pt"
    return last.is_file() and checkpoint.load(last)["state"]["step"] >= steps


def run_scores(run_dir: Path, cfg, test_gt: Path, taxset) -> dict:
    """``{mode: {"AP": .., "AP50": .., "per_class": {class: AP}}}``, cached in the run."""
    cache = run_dir / "seed_scores.json"
    key = f"{test_gt.resolve()}:{test_gt.stat().st_size}"
    if cache.is_file():
        cached = json.loads(cache.read_text())
        if cached.get("test") == key and set(MODES) <= set(cached["scores"]):
            return cached["scores"]
    scores = {}
    for mode, res in score_decodings(run_dir / "last.pt", test_gt, taxset, cfg, MODES).items():
        per_class = {c: v["AP"] for c, v in res.to_dict()["per_class"].items()}
        scores[mode] = {"AP": res.stats["AP"], "AP50": res.stats["AP50"], "per_class": per_class}
    write_atomic(cache, json.dumps({"test": key, "scores": scores}, indent=1))
    return scores


def collect(args: argparse.Namespace) -> dict:
    """Train what is missing and score every run: ``{variant: {seed: scores}}``."""
    out = Path(args.output)
    taxset = supertax.load(args.taxonomies)
    test_gt = ensure_data(args, taxset)
    oracle = [str(write_oracle_taxonomies(taxset, out / "oracle_taxonomies"))]
    runs: dict = {}
    for seed in args.seeds:
        for name in args.variants:
            recipe, kind = VARIANTS[name]
            run_dir = out / f"{name}-{kind}-s{seed}"
            cfg = recipe_config(str(RECIPES / recipe), oracle if kind == "full" else
                                args.taxonomies, args.steps, args.steps, seed, run_dir,
                                overrides(args))
            if not trained(run_dir, args.steps):
                if args.finished_only:
                    continue
                print(f"== {run_dir.name} ==", flush=True)
                cfg.run.overwrite = run_dir.exists()
                Trainer(cfg).fit()
            runs.setdefault(name, {})[seed] = run_scores(run_dir, cfg, test_gt, taxset)
    return runs


def scored_modes(runs: dict) -> list[str]:
    """The scoring modes (``MODES``) every run of ``{variant: {seed: scores}}`` holds."""
    return [m for m in MODES if all(m in v for by_seed in runs.values() for v in by_seed.values())]


def summarize(runs: dict, classes: list[str]) -> dict:
    """Mean and std over seeds of mAP, AP50 and per-class AP, per variant and decoding (the
    ``scored_modes``)."""
    out = {}
    modes = scored_modes(runs)
    for name, by_seed in runs.items():
        out[name] = {"seeds": sorted(by_seed)}
        for mode in modes:
            vals = list(by_seed.values())

            def stat(get):
                x = np.array([get(v[mode]) for v in vals], dtype=float)
                return {"mean": float(x.mean()), "std": float(x.std(ddof=1)) if len(x) > 1
                        else None, "values": x.round(4).tolist()}   # no std from one seed
            out[name][mode] = {"AP": stat(lambda v: v["AP"]), "AP50": stat(lambda v: v["AP50"]),
                               "per_class": {c: stat(lambda v, c=c: v["per_class"].get(c) or 0.0)
                                             for c in classes}}
    return out


def markdown(summary: dict, classes: list[str], mode: str) -> str:
    """One table: a column per variant, rows per class, then mAP and AP50 (mean ± std)."""
    names = list(summary)
    lines = [f"| class ({mode} decoding) | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]

    def cell(s):
        return f"{s['mean']:.3f}" + ("" if s["std"] is None else f" ± {s['std']:.3f}")

    for c in classes:
        row = [cell(summary[n][mode]["per_class"][c]) for n in names]
        lines.append(f"| {c} | " + " | ".join(row) + " |")
    for key in ("AP", "AP50"):
        label = "**mAP**" if key == "AP" else "AP50"
        lines.append(f"| {label} | " + " | ".join(cell(summary[n][mode][key]) for n in names)
                     + " |")
    return "\n".join(lines) + "\n"


def _times(a: float, b: float) -> str:
    """``a / b`` as ``1.234x``, or ``n/a`` when ``b`` is not positive (an untrained smoke run)."""
    return f"{a / b:.3f}x" if b > 0 else "n/a"


def coarse_leaves(taxset) -> list[str]:
    """The classes one customer labels and another labels only under an ancestor's name."""
    labels, anc = list(np.asarray(taxset.masks)), np.asarray(taxset.ancestors)   # [T][K], [K, K]
    out = []
    for j, name in enumerate(taxset.names):
        strict = anc[j] & (np.arange(len(anc)) != j)          # j's strict ancestors
        coarse = any(lab[strict].any() and not lab[j] for lab in labels)
        if coarse and any(lab[j] for lab in labels):
            out.append(name)
    return out


def ratios(summary: dict, mode: str, coarse: list[str] = ()) -> list[str]:
    """The headline ratios of the targets (docs/ablation.md), where the variants exist: certain
    against naive and oracle, each coarsely labeled leaf against the oracle, and the classes
    more than 0.02 AP below the naive merge."""
    m = {n: s[mode]["AP"]["mean"] for n, s in summary.items()}
    out = []
    if "certain" in m and "naive" in m:
        out.append(f"certain / naive mAP = {_times(m['certain'], m['naive'])} (target >= 1.15x)")
    if "certain" in m and "oracle" in m:
        out.append(f"certain / oracle mAP = {_times(m['certain'], m['oracle'])} "
                   "(target >= 0.95x)")
    ap = {n: {c: v["mean"] for c, v in s[mode]["per_class"].items()} for n, s in summary.items()}
    for name in [n for n in MASKED if n in ap]:
        if "oracle" in ap and coarse:
            leaves = ", ".join(f"{c} {_times(ap[name][c], ap['oracle'][c])}" for c in coarse)
            out.append(f"{name}: coarsely labeled leaves / oracle AP: {leaves} "
                       "(target >= 0.90x each)")
        if "naive" in ap:
            below = [f"{c} {ap[name][c] - ap['naive'][c]:+.3f}" for c in ap[name]
                     if ap[name][c] < ap["naive"][c] - 0.02]
            out.append(f"{name}: classes > 0.02 AP below naive: {', '.join(below) or 'none'}")
    return out


def plot(summary: dict, classes: list[str], path: Path) -> None:
    """Grouped bars with std error bars: per-class AP and mAP of every variant (coverage
    decoding, the default, as the bar; plain as a tick)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = classes + ["mAP"]
    bar = "coverage" if all("coverage" in s for s in summary.values()) else "hierarchy"
    x = np.arange(len(labels))
    width = 0.8 / len(summary)
    fig, ax = plt.subplots(figsize=(12, 4.8))
    for i, (name, s) in enumerate(summary.items()):
        pos = x + (i - (len(summary) - 1) / 2) * width
        h = [s[bar]["per_class"][c] for c in classes] + [s[bar]["AP"]]
        f = [s["flat"]["per_class"][c] for c in classes] + [s["flat"]["AP"]]
        ax.bar(pos, [v["mean"] for v in h], width, yerr=[v["std"] or 0.0 for v in h], capsize=2,
               label=name)
        ax.scatter(pos, [v["mean"] for v in f], marker="_", color="black", s=40, zorder=3)
    ax.set_xticks(x, labels, rotation=20)
    ax.set_ylabel("AP (IoU 0.50:0.95), fully labeled test split")
    seeds = ", ".join(f"{n} {len(s['seeds'])}" for n, s in summary.items())
    ax.set_title(f"Taxonomy ablation, mean ± std over seeds ({seeds}); bars: {bar} "
                 "decoding, ticks: plain", fontsize="medium")
    ax.legend(ncol=3, fontsize="small")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    configure_logging()
    start = time.perf_counter()
    runs = collect(args)
    if not runs:
        print("no finished runs", file=sys.stderr)
        return 1
    taxset = supertax.load(args.taxonomies)
    classes, coarse = list(taxset.names), coarse_leaves(taxset)
    summary = summarize(runs, classes)
    out = Path(args.output)
    modes = scored_modes(runs)
    text = "\n".join(markdown(summary, classes, mode) for mode in modes)
    text += "\n" + "\n".join(f"- {line} ({mode})" for mode in modes
                             for line in ratios(summary, mode, coarse))
    write_atomic(out / "seed_ablation.md", text + "\n")
    write_atomic(out / "seed_ablation.json", json.dumps(summary, indent=1))
    plot(summary, classes, out / "seed_ablation.png")
    print(text + f"\nwrote {out / 'seed_ablation.md'}, .json, .png "
          f"({(time.perf_counter() - start) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
