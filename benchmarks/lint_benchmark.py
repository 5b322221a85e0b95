"""The label linter against cleanlab on known, injected annotation errors.

    python benchmarks/lint_benchmark.py [--checkpoint CKPT] [--images-per-customer 80]
        [--world-seed 1] [--noise-seed 0] [--output runs/lint_benchmark]

1. A fresh demo world (``taxdet.datasets.demo``, seed ``--world-seed``, the driving taxonomies): its
   images were never trained on, so a checkpoint trained on the demo data (seed 0) predicts
   them out-of-sample, without training anything here.
2. Errors injected into each customer's own annotation file with ``--noise-seed``
   (``benchmarks.label_noise``: 5 % dropped, 3 % relabeled, 3 % moved to IoU < 0.5, 1 %
   duplicated), then merged like training merges.
3. One set of detections (``--checkpoint``), checked by the linter and by cleanlab
   (``benchmarks.lint_cleanlab``) twice: on all customers at once (the merged super-dataset)
   and customer by customer.
4. Scores (``benchmarks.lint_scoring``): precision and recall at k = the number injected, per
   error type; per-image AUROC (an image is positive when it holds an injected error);
   precision of the top 100 box-level flags; and how many flagged missing boxes are of
   classes the image's customer does not label.

Writes ``<output>/lint_benchmark.{json,md}`` and prints the table.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

CHECKPOINTS = ("runs/ablation/certain-masked-s0/last.pt", "runs/tta/p3_aug-masked-s0/last.pt",
               "runs/demo/last.pt")
DRIVING = Path(__file__).resolve().parents[1] / "taxonomies" / "driving"


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="lint_benchmark.py", description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, metavar="CKPT", help="a checkpoint trained on the "
                   "demo data (default: the first of " + ", ".join(CHECKPOINTS) + " that exists)")
    p.add_argument("--images-per-customer", type=int, default=80, metavar="N",
                   help="demo images per customer (customer_c gets 2/3) (default: %(default)s)")
    p.add_argument("--world-seed", type=int, default=1, metavar="S", help="seed of the fresh "
                   "demo world; not the training data's 0 (default: %(default)s)")
    p.add_argument("--noise-seed", type=int, default=0, metavar="S",
                   help="seed of the injected errors (default: %(default)s)")
    p.add_argument("--min-score", type=float, default=0.3, metavar="X", help="the linter's "
                   "reporting threshold, for counting its flags (default: %(default)s)")
    p.add_argument("--output", type=Path, default=Path("runs/lint_benchmark"), metavar="DIR",
                   help="world, noisy files, detections and results (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=8, metavar="N",
                   help="images per forward pass (default: %(default)s)")
    p.add_argument("--reuse", action="store_true", help="reuse the world and detections "
                   "already in --output when they were made with the same settings")
    return p


def pick_checkpoint(given: Path | None) -> Path:
    from taxdet.core.errors import InputNotFoundError
    if given is not None:
        if not given.is_file():
            raise InputNotFoundError(f"--checkpoint {given}: file not found")
        return given
    for c in CHECKPOINTS:
        if Path(c).is_file():
            return Path(c)
    raise InputNotFoundError("no --checkpoint given and none of " + ", ".join(CHECKPOINTS)
                             + " exists; train one on the demo data first (make demo)")


def make_world(out: Path, taxset, args, image_size: int) -> None:
    from taxdet.datasets.demo import DemoConfig, generate_demo
    generate_demo(out / "world", taxset, DemoConfig(
        seed=args.world_seed, images_per_customer=args.images_per_customer, test_images=0,
        image_size=image_size))


def noisy_taxonomies(out: Path, taxset, noise_seed: int) -> list:
    """Inject errors into every customer's file; write the noisy files and taxonomy copies
    pointing at them (``out/taxonomies``). Returns the injected errors."""
    from benchmarks.label_noise import NoiseConfig, inject
    errors = []
    folder = out / "taxonomies"
    folder.mkdir(parents=True, exist_ok=True)
    for stream, tax in enumerate(taxset.taxonomies):
        world = out / "world" / tax.name
        coco = json.loads((world / "annotations.json").read_text())
        noisy, injected = inject(coco, tax, NoiseConfig(seed=noise_seed), stream)
        errors += injected
        path = out / "noisy" / tax.name / "annotations.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(noisy))
        doc = yaml.safe_load(Path(tax.path).read_text())
        doc["data"] = [{"annotations": str(path.resolve()),
                        "images": str((world / "images").resolve())}]
        (folder / Path(tax.path).name).write_text(yaml.safe_dump(doc, sort_keys=False))
    (folder / Path(taxset.super.path).name).write_text(Path(taxset.super.path).read_text())
    return errors


def detections(out: Path, ckpt: Path, samples: list, taxset, args, meta: dict) -> dict:
    """The checkpoint's detections on the samples (cached in ``out/detections.json``)."""
    from taxdet.detection.linting.matching import predictions_by_image, predictions_to_results
    from taxdet.detection.linting.predictions import predict_samples
    from taxdet.detection.prediction.predictor import load_predictor
    cache = out / "detections.json"
    if args.reuse and cache.is_file():
        stored = json.loads(cache.read_text())
        if stored.get("meta") == meta:
            return predictions_by_image(stored["results"])
    predictor, _, cfg = load_predictor(ckpt, taxset=taxset)
    preds = predict_samples(predictor, samples, taxset, cfg.model.image_size, args.batch_size)
    cache.write_text(json.dumps({"meta": meta, "results": predictions_to_results(preds)}))
    return preds


def our_flags(result, taxset) -> list:
    from benchmarks.lint_scoring import Flag
    col = {n: j for j, n in enumerate(taxset.names)}
    return [Flag(i.type, i.score, i.customer, i.source_image_id, i.ann_id, i.box,
                 col.get(i.model_class, -1) if i.ann_id is None else -1) for i in result.issues]


def per_customer_cleanlab(samples: list, preds: dict, k: int):
    """cleanlab run on each customer's images separately; image scores in sample order."""
    from benchmarks.lint_cleanlab import CleanlabRun, run_cleanlab
    scores = np.zeros(len(samples))
    flags, flagged, image_flags = [], [], np.zeros(len(samples), bool)
    for customer in sorted({s.taxonomy for s in samples}):
        rows = [i for i, s in enumerate(samples) if s.taxonomy == customer]
        run = run_cleanlab([samples[i] for i in rows], preds, k)
        scores[rows], image_flags[rows] = run.image_scores, run.image_flags
        flags += run.flags
        flagged += run.flagged
    return CleanlabRun(scores, image_flags, flags, flagged)


def tool_metrics(flags: list, image_scores: np.ndarray, positive: np.ndarray, index,
                 excluded: tuple[int, int]) -> dict:
    """One tool's row: P@k / R@k per type (k = injected count), AUROC, P@100, exclusions."""
    from benchmarks.lint_scoring import auroc, box_precision_at, precision_recall_at_k
    from taxdet.detection.linting.issues import ISSUE_TYPES
    per_type = {}
    for kind in ISSUE_TYPES:
        n = sum(e.type == kind for e in index.errors)
        p, r = precision_recall_at_k(flags, index, kind, n)
        p2, r2 = precision_recall_at_k(flags, index, kind, 2 * n)
        per_type[kind] = {"injected": n, "precision_at_k": p, "recall_at_k": r,
                          "precision_at_2k": p2, "recall_at_2k": r2,
                          "flags": sum(f.type == kind for f in flags)}
    return {"per_type": per_type, "image_auroc": auroc(image_scores, positive),
            "box_precision_at_100": box_precision_at(flags, index, 100),
            "excluded_missing_flags": excluded[0], "missing_flags": excluded[1]}


def excluded_missing(flags: list, flagged: list[bool], views: dict) -> tuple[int, int]:
    """(flagged missing boxes of classes the image's customer does not label, all flagged
    missing boxes)."""
    missing = [f for f, on in zip(flags, flagged) if on and f.type == "missing_box"]
    return sum(views[f.customer].asked_class(f.column) is None for f in missing), len(missing)


@dataclass
class Bench:
    """The benchmark's inputs: noisy samples, their detections and the injected errors."""

    samples: list
    preds: dict
    taxset: object            # the noisy taxonomies (same hash as the driving ones)
    errors: list
    meta: dict

    def positives(self) -> np.ndarray:
        """[N] bool: the samples holding an injected error."""
        from benchmarks.lint_scoring import ErrorIndex
        having = ErrorIndex(self.errors).images_with_errors()
        return np.array([(s.taxonomy, s.source_image_id) in having for s in self.samples])


def prepare(args: argparse.Namespace) -> Bench:
    """World, noisy files, merged samples and the checkpoint's detections."""
    import taxdet.supertax as supertax
    from taxdet.datasets import merge
    from taxdet.detection.prediction.predictor import load_predictor
    ckpt, out = pick_checkpoint(args.checkpoint), args.output
    taxset = supertax.load([DRIVING])
    image_size = load_predictor(ckpt, taxset=taxset)[2].model.image_size
    meta = {"checkpoint": str(ckpt), "world_seed": args.world_seed, "image_size": image_size,
            "images_per_customer": args.images_per_customer, "noise_seed": args.noise_seed}
    if not (args.reuse and (out / "world").is_dir()):
        make_world(out, taxset, args, image_size)
    errors = noisy_taxonomies(out, taxset, args.noise_seed)
    noisy = supertax.load([out / "taxonomies"])
    samples = merge(noisy)[0].samples
    t0 = time.perf_counter()
    preds = detections(out, ckpt, samples, noisy, args, meta)
    meta["seconds"] = {"detections": round(time.perf_counter() - t0, 2)}
    return Bench(samples, preds, noisy, errors, meta)


def score_linter(b: Bench, min_score: float) -> dict:
    """The linter's row; every candidate issue ranked (min_score 0), flags at ``min_score``."""
    from benchmarks.lint_scoring import ErrorIndex
    from taxdet.detection.linting import LintConfig, customer_views, lint_samples
    t0 = time.perf_counter()
    ours = lint_samples(b.samples, b.preds, b.taxset, LintConfig(min_score=0.0))
    b.meta["seconds"]["linter"] = round(time.perf_counter() - t0, 2)
    flags, scores = our_flags(ours, b.taxset), ours.image_scores()
    row = tool_metrics(flags, np.array([scores[s.image_id] for s in b.samples]), b.positives(),
                       ErrorIndex(b.errors),
                       excluded_missing(flags, [f.score >= min_score for f in flags],
                                        customer_views(b.taxset)))
    row["flagged_images"] = len({i.image_id for i in ours.issues if i.score >= min_score})
    return row


def score_cleanlab(b: Bench) -> dict:
    """cleanlab's rows: on all customers at once, and customer by customer."""
    from benchmarks.lint_cleanlab import run_cleanlab
    from benchmarks.lint_scoring import ErrorIndex
    from taxdet.detection.linting import customer_views
    t0, k = time.perf_counter(), b.taxset.num_classes
    rows = {}
    for name, cl in (("cleanlab (all customers)", run_cleanlab(b.samples, b.preds, k)),
                     ("cleanlab (per customer)", per_customer_cleanlab(b.samples, b.preds, k))):
        rows[name] = tool_metrics(cl.flags, cl.image_scores, b.positives(), ErrorIndex(b.errors),
                                  excluded_missing(cl.flags, cl.flagged, customer_views(b.taxset)))
        rows[name]["flagged_images"] = int(cl.image_flags.sum())
    b.meta["seconds"]["cleanlab (both runs)"] = round(time.perf_counter() - t0, 2)
    return rows


def run(args: argparse.Namespace) -> int:
    b = prepare(args)
    rows = {"linter": score_linter(b, args.min_score), **score_cleanlab(b)}
    meta = {**b.meta, "images": len(b.samples), "positive_images": int(b.positives().sum()),
            "errors": len(b.errors)}
    write_report(args.output, {"meta": meta, "tools": rows,
                               "errors": [e.to_dict() for e in b.errors]})
    return 0


def fmt(v: float) -> str:
    return "—" if v != v else f"{v:.3f}"


def markdown_table(report: dict) -> str:
    from taxdet.detection.linting.issues import ISSUE_TYPES
    tools = report["tools"]
    names = list(tools)
    lines = ["| metric | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for kind in ISSUE_TYPES:
        n = tools["linter"]["per_type"][kind]["injected"]
        for key, label in (("precision_at_k", "P@k"), ("recall_at_k", "R@k"),
                           ("recall_at_2k", "R@2k")):
            lines.append(f"| {kind} {label} (k = {n}) | "
                         + " | ".join(fmt(tools[t]["per_type"][kind][key]) for t in names) + " |")
    lines.append("| per-image AUROC | " + " | ".join(fmt(tools[t]["image_auroc"])
                                                     for t in names) + " |")
    lines.append("| box-level precision@100 | " + " | ".join(
        fmt(tools[t]["box_precision_at_100"]) for t in names) + " |")
    lines.append("| flagged missing boxes of classes the customer does not label | " + " | ".join(
        f"{tools[t]['excluded_missing_flags']} of {tools[t]['missing_flags']}" for t in names)
        + " |")
    flagged = " | ".join(str(tools[t]["flagged_images"]) for t in names)
    lines.append(f"| images flagged | {flagged} |")
    return "\n".join(lines)


def write_report(out: Path, report: dict) -> None:
    from taxdet.core.files import write_atomic
    m = report["meta"]
    head = (f"Label linter vs cleanlab: {m['images']} images ({m['positive_images']} with an "
            f"injected error), {m['errors']} injected errors, checkpoint {m['checkpoint']}, world "
            f"seed {m['world_seed']}, noise seed {m['noise_seed']}.")
    table = markdown_table(report)
    write_atomic(out / "lint_benchmark.json", json.dumps(report, indent=1) + "\n")
    write_atomic(out / "lint_benchmark.md", f"{head}\n\n{table}\n")
    print(f"{head}\n\n{table}\n\nwrote {out / 'lint_benchmark.json'}, {out / 'lint_benchmark.md'}")


def main(argv: list[str] | None = None) -> int:
    from taxdet.core.errors import run_cli
    args = build_parser().parse_args(argv)
    return run_cli(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
