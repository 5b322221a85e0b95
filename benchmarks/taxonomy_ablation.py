"""Naive merge vs separate heads vs Taxonomy Loss Masking vs fully labeled, on one test set.

    python benchmarks/taxonomy_ablation.py --taxonomies taxonomies/driving --output runs/ablation

Trains each variant with the same model, seed, data order and step budget on the
demo data (generated into --data if absent), scores each on the fully labeled
test split, and writes ``ablation.md`` (table) and ``ablation.png`` (bar chart).
Defaults fit a 2-core CPU in about an hour; for a longer run on a GPU, e.g.
``--steps 3000 --image-size 512 --batch-size 16 --device cuda``.
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

# benchmarks/ is not installed: its library part (benchmarks.ablation) comes from the checkout
import torch
import yaml

import taxdet.supertax as supertax
from benchmarks.ablation import (
    VARIANTS,
    bar_chart,
    markdown_table,
    run_variant,
    variant_config,
    write_oracle_taxonomies,
)
from taxdet.datasets.demo import DemoConfig, generate_demo
from taxdet.detection.model.detector_config import TrainConfig


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--taxonomies", nargs="+", default=["taxonomies/driving"])
    p.add_argument("--output", default="runs/ablation")
    p.add_argument("--data", default="data/demo", help="demo data folder (generated if absent)")
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=VARIANTS)
    p.add_argument("--config", help="a training recipe YAML (train.py --config format; "
                   "default: benchmarks/recipes/demo.yaml); the flags below override it",
                   default=str(Path(__file__).parent / "recipes" / "demo.yaml"))
    p.add_argument("--model", help="model name (default: the recipe's)")
    p.add_argument("--image-size", type=int, help="input size (default: the recipe's)")
    p.add_argument("--batch-size", type=int, help="batch size (default: the recipe's)")
    p.add_argument("--steps", type=int, default=300, help="training steps (default: 300)")
    p.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--device", default="auto")
    return p.parse_args(argv)


def base_config(args: argparse.Namespace) -> TrainConfig:
    """The recipe, with the flags that were given laid over it."""
    tree = (yaml.safe_load(Path(args.config).read_text()) or {}) if args.config else {}
    given = {("model", "name"): args.model, ("model", "image_size"): args.image_size,
             ("optim", "batch_size"): args.batch_size, ("optim", "lr"): args.lr,
             ("optim", "steps"): args.steps, ("data", "taxonomies"): args.taxonomies,
             ("data", "workers"): args.workers, ("run", "seed"): args.seed,
             ("run", "device"): args.device, ("run", "val_every"): args.steps,
             ("run", "log_every"): 25}
    for (section, key), value in given.items():
        if value is not None:
            tree.setdefault(section, {})[key] = value
    return TrainConfig.from_dict(tree, where=args.config or "ablation")


def main(argv=None) -> int:
    args = parse_args(argv)
    out = Path(args.output)
    out.mkdir(parents=True, exist_ok=True)
    taxset = supertax.load(args.taxonomies)
    test_gt = Path(args.data) / "test" / "annotations.json"
    if not test_gt.is_file():
        generate_demo(Path(args.data), taxset, DemoConfig(seed=args.seed))
    oracle_dir = write_oracle_taxonomies(taxset, out / "oracle_taxonomies")
    base = base_config(args)
    results = []
    t0 = time.perf_counter()
    for name in args.variants:
        print(f"== {name} ==", flush=True)
        results.append(run_variant(variant_config(base, name, out, oracle_dir), name, test_gt,
                                   taxset))
    machine = (f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, "
               f"torch {torch.__version__}, device {args.device}")
    table = markdown_table(results, taxset.names)
    command = ("python benchmarks/taxonomy_ablation.py "
               + " ".join(sys.argv[1:] if argv is None else argv))
    text = (f"{table}\n\nCommand: `{command}`  \n{base.model.name} at "
            f"{base.model.image_size}px, batch {base.optim.batch_size}, {args.steps} steps, "
            f"seed {args.seed}; {machine}; total "
            f"{(time.perf_counter() - t0) / 60:.1f} min.\n")
    (out / "ablation.md").write_text(text)
    (out / "ablation.json").write_text(json.dumps([asdict(r) for r in results], indent=1))
    bar_chart(results, taxset.names, out / "ablation.png")
    print(text)
    print(f"wrote {out / 'ablation.md'}, {out / 'ablation.png'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
