"""The SOCAR question on the demo's classification world: one classifier per customer, or one
classifier on the concatenated datasets? Mean ± std over seeds.

    python benchmarks/classification_ablation.py --seeds 0 1 2 --steps 150 \\
        --output runs/classification_ablation

Systems (the same timm model, input size, batch, step budget and recipe for every model):

* ``task-centric``: one classifier per customer, each on its own data with its own labels (the
  softmax loss over its classes): three models, three OOD detectors;
* ``naive``: one classifier on the plain concatenation, plain softmax over all K classes;
* ``softmax`` / ``bce`` / ``focal`` / ``hierarchical``: one classifier on the concatenation
  with Taxonomy Loss Masking and that loss.

Every system is scored on the same val images (the stable split of ``--val-fraction``) in each
customer's labels: top-1 accuracy per task, top-2 in the super view, ECE, and OOD AUROC of the
max-logit score on the ``maps_to: null`` images (customer A's dogs), per task (that task's
images against the OOD images, each task-centric model its own detector) and averaged. The
world is generated into ``--data`` when absent. Finished runs are reused. Writes
``classification_ablation.{md,json,png}`` into ``--output``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

# benchmarks/ is not installed: run from the checkout
import taxdet.supertax as supertax
from taxdet.core.files import write_atomic
from taxdet.datasets.classification_data import load_classification
from taxdet.datasets.classification_torch import ClassificationDataset
from taxdet.datasets.demo import DemoConfig, copy_taxonomies
from taxdet.datasets.demo_classification import SUMMARY, generate_crops
from taxdet.datasets.split import assign_split
from taxdet.detection.classification.classifier_config import ClassifierConfig
from taxdet.detection.classification.classifier_evaluation import (
    evaluate_logits,
    ood_result,
    predict_logits,
)
from taxdet.detection.classification.classifier_loaders import eval_loader
from taxdet.detection.classification.classifier_predictor import load_classifier
from taxdet.detection.classification.classifier_trainer import ClassifierTrainer
from taxdet.detection.engine import checkpoint

CONCATENATED = {"naive": ("softmax", False), "softmax": ("softmax", True),
                "bce": ("bce", True), "focal": ("focal", True),
                "hierarchical": ("hierarchical", True)}
SYSTEMS = ("task-centric", *CONCATENATED)
METRICS = ("accuracy", "top2_super", "ECE", "AUROC")  # then accuracy per task


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--systems", nargs="+", choices=SYSTEMS, default=list(SYSTEMS),
                   help="which systems (default: all)")
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2],
                   help="training seeds (default: 0 1 2)")
    p.add_argument("--steps", type=int, default=150, help="training steps per model "
                   "(default: 150)")
    p.add_argument("--model", default="mobilenetv3_small_050",
                   help="timm model (default: mobilenetv3_small_050)")
    p.add_argument("--batch-size", type=int, default=32, help="batch size (default: 32)")
    p.add_argument("--lr", type=float, default=5e-3, help="peak learning rate (default: 5e-3)")
    p.add_argument("--val-fraction", type=float, default=0.3,
                   help="share of each customer's images held out and scored (default: 0.3)")
    p.add_argument("--taxonomies", default="taxonomies/driving",
                   help="the taxonomy folder whose customers are used (default: "
                   "taxonomies/driving)")
    p.add_argument("--data", default="data/classification_ablation",
                   help="the classification world; generated when absent (default: "
                   "data/classification_ablation)")
    p.add_argument("--scenes", type=int, default=150,
                   help="scenes per customer when the world is generated (default: 150)")
    p.add_argument("--output", default="runs/classification_ablation",
                   help="runs and tables (default: runs/classification_ablation)")
    return p.parse_args(argv)


def write_taxonomies(source: Path, data: Path, out: Path, only: str | None = None) -> Path:
    """Copies of the taxonomy YAMLs of ``source`` whose data is the classification world
    ``data`` (customer ``only`` alone, if given); returns their folder."""
    return copy_taxonomies(source, out, lambda name: [
        {"classification": str((data / name).resolve())}], only)


def run_config(args: argparse.Namespace, taxonomies: Path, loss: str, masked: bool, seed: int,
               out: Path) -> ClassifierConfig:
    return ClassifierConfig.from_dict({
        "model": {"name": args.model, "image_size": 64},
        "data": {"taxonomies": [str(taxonomies)]},
        "split": {"val_fraction": args.val_fraction},
        "loss": {"name": loss},
        "optim": {"batch_size": args.batch_size, "steps": args.steps, "lr": args.lr,
                  "warmup_steps": max(1, args.steps // 10), "ema_decay": 0.99},
        "run": {"output": str(out), "seed": seed, "device": "cpu", "progress": False,
                "val_every": args.steps, "log_every": 50, "taxonomy_mask": masked,
                "overwrite": out.exists()}})


def trained_run(cfg: ClassifierConfig) -> Path:
    """``last.pt`` of the run, trained first unless it already holds ``optim.steps`` steps."""
    last = Path(cfg.run.output) / "last.pt"
    if not (last.is_file() and checkpoint.load(last)["state"]["step"] >= cfg.optim.steps):
        print(f"== {Path(cfg.run.output).name} ==", flush=True)
        ClassifierTrainer(cfg).fit()
    return last


class World:
    """The scored images: the val split of every customer and the OOD images, as one
    ``ClassificationDataset`` each, and their logits per checkpoint."""

    def __init__(self, taxonomies: Path, val_fraction: float):
        self.taxset = supertax.load(str(taxonomies))
        data = load_classification(self.taxset)
        cfg = ClassifierConfig.from_dict({"split": {"val_fraction": val_fraction}})
        _, self.val = assign_split(data.samples, cfg.split)
        self.ood = data.ood

    def logits(self, last: Path, samples: list) -> tuple[np.ndarray, np.ndarray, object]:
        """(val logits [N, K] of ``samples``, OOD logits [M, K], the run's config)."""
        model, own, cfg = load_classifier(last)
        k = own.num_classes

        def run(items):
            ds = ClassificationDataset(items, self.taxset, cfg.model.image_size)
            return predict_logits(model, eval_loader(ds, 128), next(model.parameters()).device,
                                  k)
        return run(samples), run(self.ood), cfg


def scores(result, per_task_auroc: dict[str, float]) -> dict:
    """The table's numbers of one system and seed."""
    out = {"accuracy": result.headline()["accuracy"], "top2_super": result.super_top_n.get(2),
           "ECE": result.ece, "AUROC": float(np.mean(list(per_task_auroc.values())))}
    out.update({f"acc {t.taxonomy}": t.top_n[1] for t in result.tasks})
    out.update({f"AUROC {t}": v for t, v in per_task_auroc.items()})
    return out


def score_concatenated(world: World, last: Path) -> dict:
    val, ood, cfg = world.logits(last, world.val)
    trained = world.taxset.masks.any(axis=0)
    result = evaluate_logits(val, world.val, ood, world.taxset, trained, cfg.loss.sigmoid)
    per_task = {t: v["max_logit"]["AUROC"] for t, v in result.ood["per_taxonomy"].items()}
    return scores(result, per_task)


def score_task_centric(world: World, lasts: dict[str, Path]) -> dict:
    """Each val image scored by its own customer's model; columns that model does not train
    are -inf, so the rankings and the customer views see only its classes."""
    combined = np.zeros((len(world.val), world.taxset.num_classes))
    per_task, sigmoid = {}, False
    for name, last in lasts.items():
        rows = np.array([s.taxonomy == name for s in world.val])
        samples = [s for s in world.val if s.taxonomy == name]
        val, ood, cfg = world.logits(last, samples)
        trained = world.taxset.label_mask(name)
        combined[rows] = np.where(trained, val, -np.inf)
        per_task[name] = ood_result(val, ood, trained, {})["max_logit"]["AUROC"]
        sigmoid = cfg.loss.sigmoid
    result = evaluate_logits(combined, world.val, np.zeros((0, world.taxset.num_classes)),
                             world.taxset, world.taxset.masks.any(axis=0), sigmoid)
    return scores(result, per_task)


def collect(args: argparse.Namespace) -> dict[str, list[dict]]:
    """Train what is missing and score every system: ``{system: [scores per seed]}``."""
    out, data = Path(args.output), Path(args.data)
    if not (data / SUMMARY).is_file():
        generate_crops(data, supertax.load(args.taxonomies), DemoConfig(
            images_per_customer=args.scenes))
    source = Path(args.taxonomies)
    full = write_taxonomies(source, data, out / "taxonomies" / "all")
    world = World(full, args.val_fraction)
    runs: dict[str, list[dict]] = {}
    for seed in args.seeds:
        for system in args.systems:
            if system == "task-centric":
                lasts = {t.name: trained_run(run_config(
                    args, write_taxonomies(source, data, out / "taxonomies" / t.name, t.name),
                    "softmax", True, seed, out / f"task-centric-{t.name}-s{seed}"))
                    for t in world.taxset.taxonomies}
                result = score_task_centric(world, lasts)
            else:
                loss, masked = CONCATENATED[system]
                result = score_concatenated(world, trained_run(run_config(
                    args, full, loss, masked, seed, out / f"{system}-s{seed}")))
            runs.setdefault(system, []).append({"seed": seed, **result})
    return runs


def summarize(runs: dict[str, list[dict]]) -> dict:
    """``{system: {metric: {"mean", "std", "values"}}}`` over the seeds (std with ddof 1)."""
    out = {}
    for system, rows in runs.items():
        keys = [k for k in rows[0] if k != "seed"]
        values = {k: np.array([np.nan if r[k] is None else r[k] for r in rows]) for k in keys}
        out[system] = {k: {"mean": float(np.nanmean(v)),
                           "std": float(np.nanstd(v, ddof=1)) if np.isfinite(v).sum() > 1
                           else 0.0, "values": np.round(v, 4).tolist()}
                       for k, v in values.items()}
        out[system]["seeds"] = [r["seed"] for r in rows]
    return out


def table(summary: dict) -> str:
    """Markdown: a row per system; accuracy per task, mean accuracy, top-2, ECE, AUROC."""
    first = next(iter(summary.values()))
    tasks = sorted(k for k in first if k.startswith("acc "))
    columns = tasks + list(METRICS)
    heads = [c.replace("acc ", "accuracy ") for c in tasks] + [
        "mean accuracy", "top-2 (super view)", "ECE", "OOD AUROC (max-logit)"]
    lines = ["| system | " + " | ".join(heads) + " |", "|---|" + "---:|" * len(heads)]
    for system, s in summary.items():
        cells = [f"{s[c]['mean']:.3f} ± {s[c]['std']:.3f}" for c in columns]
        lines.append(f"| {system} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def chart(summary: dict, path: Path) -> None:
    """Grouped bars (mean, std error bars): mean accuracy, top-2, 1 - ECE and OOD AUROC."""
    from taxdet.detection.evaluation.eval_plots import _save, plt
    shown = {"mean accuracy": "accuracy", "top-2 (super)": "top2_super", "OOD AUROC": "AUROC"}
    x = np.arange(len(shown))
    width = 0.8 / len(summary)
    fig, ax = plt.subplots(figsize=(9, 4.2))
    for i, (system, s) in enumerate(summary.items()):
        pos = x + (i - (len(summary) - 1) / 2) * width
        ax.bar(pos, [s[k]["mean"] for k in shown.values()], width,
               yerr=[s[k]["std"] for k in shown.values()], capsize=2, label=system)
    ax.set_xticks(x, list(shown))
    seeds = next(iter(summary.values()))["seeds"]
    ax.set(ylim=(0.4, 1.02), title=f"Classification ablation, mean ± std over seeds {seeds}")
    ax.legend(ncol=len(summary), fontsize="small", loc="upper center",
              bbox_to_anchor=(0.5, -0.08))
    fig.tight_layout()
    _save(fig, path)


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    summary = summarize(collect(args))
    out = Path(args.output)
    text = table(summary)
    write_atomic(out / "classification_ablation.md", text)
    write_atomic(out / "classification_ablation.json", json.dumps(summary, indent=1))
    chart(summary, out / "classification_ablation.png")
    print(text + f"\nwrote {out / 'classification_ablation.md'}, .json, .png "
          f"({(time.perf_counter() - start) / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
