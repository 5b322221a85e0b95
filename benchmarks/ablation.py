"""The taxonomy ablation: four ways to train on partially labeled customer data, one test set.

* ``naive``    plain merged super-dataset, no column masks;
* ``separate`` shared backbone + BiFPN, one head pair per taxonomy (``PerTaxonomyHeads``);
* ``masked``   Taxonomy Loss Masking (the default training);
* ``oracle``   the same images with every object labeled (the demo generator knows them all).

Every variant uses the same model, seed, data order and step budget, and is
scored on the same fully labeled test split.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from pathlib import Path

import torch
import yaml

import taxdet.supertax as supertax
from taxdet.detection.engine import checkpoint
from taxdet.detection.evaluation import EvalResult, evaluate
from taxdet.detection.model.detector_config import TrainConfig
from taxdet.detection.model.detector_wrappers import to_coco_results
from taxdet.detection.prediction.hierarchy_decoding import decoding_matrix
from taxdet.detection.prediction.predictor import (
    ground_truth_loader,
    load_predictor,
    predict_images,
)
from taxdet.detection.training.trainer import Trainer

VARIANTS = ("naive", "separate", "masked", "oracle")


@dataclass
class VariantResult:
    name: str
    stats: dict            # the 12 COCO numbers
    per_class: dict        # class -> {AP, AP50, AR100, ...}
    parameters: int
    images_per_s: float    # mean training throughput
    train_seconds: float   # steps x batch / images_per_s


def write_oracle_taxonomies(taxset: supertax.TaxonomySet, out: Path) -> Path:
    """Taxonomy files labeling every super class, over each customer's ``annotations_full.json``.

    Same taxonomy names, images and sampling weights as the customers (so the same
    split and data order); every class maps to itself, so every column is labeled.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "super.yaml").write_text(yaml.safe_dump(taxset.super.to_dict(), sort_keys=False))
    for tax in taxset.taxonomies:
        data = []
        for src in tax.data:
            full = Path(src.annotations).with_name("annotations_full.json")
            if not full.is_file():
                raise FileNotFoundError(f"{full}: no fully labeled annotations for the oracle "
                                        f"(taxonomy {tax.name!r}; generate them with "
                                        f"tools/make_demo_data.py)")
            data.append({"annotations": str(full), "images": src.images})
        doc = {"kind": "taxonomy", "name": tax.name, "super_taxonomy": taxset.super.name,
               "labels": [{"name": n, "maps_to": n} for n in taxset.names],
               "sampling_weight": tax.sampling_weight, "data": data}
        (out / f"{tax.name}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


def recipe_config(recipe_yaml: str, taxonomies: list[str], steps: int, eval_every: int,
                  seed: int, output: Path, overrides: dict | None = None) -> TrainConfig:
    """The recipe's options over the base: taxonomies, step budget, seed, output folder, and
    ``overrides`` (``{section: {field: value}}``, e.g. a smaller image size for a smoke test).
    A recipe's own ``run.val_every`` wins over ``eval_every`` (a pseudo-label schedule that
    needs validations during training)."""
    tree = (yaml.safe_load(Path(recipe_yaml).read_text()) or {}) if recipe_yaml else {}
    for section, fields in (overrides or {}).items():
        tree.setdefault(section, {}).update(fields)
    tree.setdefault("data", {})["taxonomies"] = taxonomies
    tree.setdefault("optim", {})["steps"] = steps
    run = tree.setdefault("run", {})
    run.setdefault("val_every", eval_every)
    run.update(seed=seed, output=str(output), progress=False)
    return TrainConfig.from_dict(tree, where=recipe_yaml or "base")


def variant_config(base: TrainConfig, name: str, out: Path, oracle_dir: Path) -> TrainConfig:
    cfg = copy.deepcopy(base)
    cfg.run.output = str(out / name)
    if name == "naive":
        cfg.run.taxonomy_mask = False
    elif name == "separate":
        cfg.model.heads = "per-taxonomy"
    elif name == "oracle":
        cfg.data.taxonomies = [str(oracle_dir)]
    elif name != "masked":
        raise ValueError(f"unknown variant {name!r}; choose from {VARIANTS}")
    return cfg


def _mean_rate(run_dir: Path) -> float:
    rates = [r["images_per_s"]
             for r in map(json.loads, (run_dir / "metrics.jsonl").read_text().splitlines())
             if "images_per_s" in r]
    return sum(rates) / max(1, len(rates))


def _trained(run_dir: Path, steps: int) -> bool:
    """A finished run of ``steps`` steps is already in ``run_dir`` (the ablation reuses it)."""
    last = run_dir / "last.pt"
    return last.is_file() and checkpoint.load(last)["state"]["step"] >= steps


def score_checkpoint(path: Path, test_gt: Path, taxset: supertax.TaxonomySet,
                     cfg: TrainConfig) -> tuple[EvalResult, int]:
    """The checkpoint's EMA model scored on a fully labeled test split (images in ``images/``
    beside the ground truth), and its parameter count."""
    predictor, _, _ = load_predictor(path)
    params = sum(p.numel() for p in predictor.model.parameters())
    results = predict_images(predictor, test_gt, test_gt.parent / "images", taxset=taxset,
                             image_size=cfg.model.image_size, batch_size=cfg.optim.batch_size,
                             progress=False)
    return evaluate(str(test_gt), results, taxset=taxset), params


# scoring mode -> decoding (taxdet.detection.prediction.hierarchy_decoding): "flat" is "own"
SCORING_DECODINGS = {"flat": "own", "hierarchy": "hierarchy", "coverage": "coverage"}


def score_decodings(path: Path, test_gt: Path, taxset: supertax.TaxonomySet, cfg: TrainConfig,
                    modes: tuple[str, ...] = ("flat", "hierarchy")) -> dict[str, EvalResult]:
    """The checkpoint's EMA model scored on the test split once per scoring mode (a key of
    ``SCORING_DECODINGS``; ``coverage`` applies the checkpoint's decoding plan) from one
    forward pass per batch: ``{mode: EvalResult}``."""
    predictor, _, _ = load_predictor(path, hierarchy_decoding="own")
    loader = ground_truth_loader(test_gt, test_gt.parent / "images", taxset=taxset,
                                 image_size=cfg.model.image_size,
                                 batch_size=cfg.optim.batch_size)
    matrices = {mode: decoding_matrix(SCORING_DECODINGS[mode], taxset, predictor.decoding_plan)
                for mode in modes}
    decodings = {mode: None if m is None else torch.as_tensor(m) for mode, m in matrices.items()}
    results: dict[str, list[dict]] = {mode: [] for mode in modes}
    with torch.no_grad():
        for batch in loader:
            cls_out, box_out = predictor.model(batch["image"])
            for mode, hierarchy in decodings.items():
                dets = predictor.decode(cls_out, box_out, batch["scale"], batch["orig_size"],
                                        hierarchy)
                results[mode] += to_coco_results(dets, batch["image_id"].tolist())
    return {mode: evaluate(str(test_gt), res, taxset=taxset) for mode, res in results.items()}


def score_both_ways(path: Path, test_gt: Path, taxset: supertax.TaxonomySet,
                    cfg: TrainConfig) -> dict[str, EvalResult]:
    """The checkpoint's EMA model scored on the test split twice from one forward pass per
    batch: ``{"flat": plain decoding, "hierarchy": hierarchy-consistent decoding}``."""
    return score_decodings(path, test_gt, taxset, cfg, ("flat", "hierarchy"))


def run_variant(cfg: TrainConfig, name: str, test_gt: Path,
                taxset: supertax.TaxonomySet) -> VariantResult:
    """Train one variant (unless already done), then score its last checkpoint (EMA) on the
    fully labeled test split (images in ``images/`` beside the ground truth)."""
    run_dir = Path(cfg.run.output)
    if not _trained(run_dir, cfg.optim.steps):
        Trainer(cfg).fit()
    res, params = score_checkpoint(run_dir / "last.pt", test_gt, taxset, cfg)
    (run_dir / "test_eval.json").write_text(json.dumps(res.to_dict(), indent=1))
    rate = _mean_rate(run_dir)
    seconds = cfg.optim.steps * cfg.optim.batch_size / max(rate, 1e-9)
    return VariantResult(name, res.stats, res.to_dict()["per_class"], params, rate, seconds)


def markdown_table(results: list[VariantResult], class_names: list[str]) -> str:
    """Per class AP / AP50 / recall@100 of every variant, then mAP, parameters and speed."""
    head = "| class | " + " | ".join(f"{r.name} AP / AP50 / R@100" for r in results) + " |"
    lines = [head, "|---|" + "---|" * len(results)]

    def cell(v):
        return "-" if v is None else f"{v:.3f}"

    for name in class_names:
        row = [" / ".join(cell(r.per_class.get(name, {}).get(k)) for k in ("AP", "AP50", "AR100"))
               for r in results]
        lines.append(f"| {name} | " + " | ".join(row) + " |")
    lines.append("| **mAP (AP, AP50, AR100)** | " + " | ".join(
        f"**{cell(r.stats['AP'])}** / {cell(r.stats['AP50'])} / {cell(r.stats['AR100'])}"
        for r in results) + " |")
    lines.append("| parameters | "
                 + " | ".join(f"{r.parameters / 1e6:.2f} M" for r in results) + " |")
    lines.append("| training images/s | "
                 + " | ".join(f"{r.images_per_s:.2f}" for r in results) + " |")
    return "\n".join(lines)


def bar_chart(results: list[VariantResult], class_names: list[str], path: Path) -> None:
    """Grouped bars: per-class AP of each variant, plus the mean."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    labels = class_names + ["mAP"]
    x = np.arange(len(labels))
    width = 0.8 / len(results)
    fig, ax = plt.subplots(figsize=(11, 4.5))
    for i, r in enumerate(results):
        vals = ([(r.per_class.get(n, {}).get("AP") or 0.0) for n in class_names]
                + [max(r.stats["AP"], 0)])
        ax.bar(x + (i - (len(results) - 1) / 2) * width, vals, width, label=r.name)
    ax.set_xticks(x, labels, rotation=20)
    ax.set_ylabel("AP (IoU 0.50:0.95), fully labeled test split")
    ax.set_title("Taxonomy ablation: same model, seed, data order and steps")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
