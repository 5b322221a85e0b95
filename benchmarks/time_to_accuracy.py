"""Time to accuracy: test-split mAP against training time and steps, for one or more recipes.

    python benchmarks/time_to_accuracy.py --recipe before=benchmarks/recipes/demo_before.yaml \\
        --recipe after=benchmarks/recipes/demo.yaml --data full masked --steps 300 \\
        --eval-every 50 --output runs/tta

A recipe is ``NAME=FILE``: a YAML file of training options (the ``train.py --config`` format)
laid over this script's base (the demo taxonomies, ``--steps``, ``--seed``). Each recipe is
trained on the fully labeled demo data (``full``, the oracle) and/or the customers' partially
labeled data (``masked``), back to back on the same machine. Every ``--eval-every`` steps the
EMA model is scored on the fully labeled test split; the time axis is the training time only
(``TrainState.train_seconds``: steps and data loading, validation and scoring left out).
Finished runs are reused. Writes ``tta.json`` per run, ``tta.md`` and ``tta.png``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# benchmarks/ is not installed: its library part (benchmarks.ablation) comes from the checkout
import taxdet.supertax as supertax
from benchmarks.ablation import recipe_config, score_checkpoint, write_oracle_taxonomies
from taxdet.core.files import write_atomic
from taxdet.datasets.demo import DemoConfig, generate_demo
from taxdet.detection.model.detector_config import TrainConfig
from taxdet.detection.training.trainer import Trainer

DATA_KINDS = ("full", "masked")


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipe", action="append", required=True, metavar="NAME=YAML",
                   help="a recipe: its name and a YAML file of training options (repeatable)")
    p.add_argument("--data", nargs="+", choices=DATA_KINDS, default=list(DATA_KINDS),
                   help="train on the fully labeled data (full), the customers' data (masked)")
    p.add_argument("--taxonomies", nargs="+", default=["taxonomies/driving"],
                   help="the customer taxonomies (default: taxonomies/driving)")
    p.add_argument("--demo-data", default="data/demo",
                   help="demo data folder, generated if absent (default: data/demo)")
    p.add_argument("--steps", type=int, default=300, help="training steps (default: 300)")
    p.add_argument("--eval-every", type=int, default=50,
                   help="score the test split every N steps (default: 50)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds (default: 0)")
    p.add_argument("--output", default="runs/tta", help="output folder (default: runs/tta)")
    p.add_argument("--finished-only", action="store_true",
                   help="train nothing: table and plot of the runs already finished")
    return p.parse_args(argv)


def finished(cfg: TrainConfig) -> list[dict]:
    """The points of a finished run of ``cfg`` (its ``tta.json`` reaches the step budget), or
    an empty list."""
    done = Path(cfg.run.output) / "tta.json"
    points = json.loads(done.read_text()) if done.is_file() else []
    return points if points and points[-1]["step"] >= cfg.optim.steps else []


def run_curve(cfg: TrainConfig, test_gt: Path, taxset: supertax.TaxonomySet) -> list[dict]:
    """Train (unless ``tta.json`` says this run finished) and return its (step, seconds, mAP)
    points."""
    out = Path(cfg.run.output)
    points = finished(cfg)
    if points:
        return points
    done = out / "tta.json"
    cfg.run.overwrite = out.exists()

    def score(trainer: Trainer) -> None:
        res, _ = score_checkpoint(trainer.out / "last.pt", test_gt, taxset, cfg)
        s = trainer.state
        points.append({"step": s.step, "train_seconds": round(s.train_seconds, 1),
                       "AP": res.stats["AP"], "AP50": res.stats["AP50"]})
        print(f"  step {s.step:5d}  {s.train_seconds / 60:6.1f} min  mAP {res.stats['AP']:.3f}",
              flush=True)
        write_atomic(done, json.dumps(points, indent=1))

    trainer = Trainer(cfg)
    trainer.on_validate.append(score)
    trainer.fit()
    return points


def markdown(curves: dict[str, list[dict]]) -> str:
    lines = ["| run | steps | train min | mAP | AP50 | mAP at each eval |",
             "|---|---|---|---|---|---|"]
    for name, pts in curves.items():
        last = pts[-1]
        trail = " ".join(f"{p['AP']:.3f}" for p in pts)
        lines.append(f"| {name} | {last['step']} | {last['train_seconds'] / 60:.1f} | "
                     f"{last['AP']:.3f} | {last['AP50']:.3f} | {trail} |")
    return "\n".join(lines) + "\n"


def plot(curves: dict[str, list[dict]], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, (by_time, by_step) = plt.subplots(1, 2, figsize=(11, 4), sharey=True)
    for name, pts in curves.items():
        ap = [p["AP"] for p in pts]
        by_time.plot([p["train_seconds"] / 60 for p in pts], ap, marker="o", label=name)
        by_step.plot([p["step"] for p in pts], ap, marker="o", label=name)
    by_time.set(xlabel="training time (min)", ylabel="mAP, fully labeled test split")
    by_step.set(xlabel="step")
    by_step.legend(fontsize="small")
    fig.suptitle("Time to accuracy")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.output)
    taxset = supertax.load(args.taxonomies)
    test_gt = Path(args.demo_data) / "test" / "annotations.json"
    if not test_gt.is_file():
        generate_demo(Path(args.demo_data), taxset, DemoConfig())
    oracle = [str(write_oracle_taxonomies(taxset, out / "oracle_taxonomies"))]
    curves = {}
    for recipe in args.recipe:
        name, _, yaml_path = recipe.partition("=")
        for kind in args.data:
            for seed in args.seeds:
                run = f"{name}-{kind}-s{seed}"
                print(f"== {run} ==", flush=True)
                cfg = recipe_config(yaml_path, oracle if kind == "full" else args.taxonomies,
                                    args.steps, args.eval_every, seed, out / run)
                if args.finished_only:
                    done = finished(cfg)
                    if done:
                        curves[run] = done
                    continue
                curves[run] = run_curve(cfg, test_gt, taxset)
    text = markdown(curves)
    (out / "tta.md").write_text(text)
    plot(curves, out / "tta.png")
    print(text + f"wrote {out / 'tta.md'}, {out / 'tta.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
