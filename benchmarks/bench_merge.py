"""Merge speed and memory vs plain pycocotools loading of the same COCO files.

Generates (in a temp dir, deleted afterwards) 3 customer COCO files of the driving
taxonomies with --images images and --annotations annotations in total, then runs,
each in its own subprocess (fair peak RSS):

* merge:  ``taxdet.datasets.merge(taxset, MergeConfig(check_images=False))`` -- images are not
  generated, so image decoding/hashing is not part of this benchmark;
* coco:   ``pycocotools.coco.COCO(path)`` for each file (json.load + index), all kept alive.

Prints seconds, peak RSS (gross, and net of the imports) and the ratios merge / coco.
Goal: time ratio <= 1.5, memory ratio <= 2. Usage::

    python benchmarks/bench_merge.py [--images 100000] [--annotations 1000000] [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
CUSTOMERS = {"customer_a": ["Human", "Dog"],
             "customer_b": ["Pedestrian_adult", "Pedestrian_child", "Car", "Truck"],
             "customer_c": ["Vehicle", "Traffic_light"]}


def make_coco(n_images: int, n_anns: int, names: list[str], seed: int) -> dict:
    """Random COCO dict: 640x480 images, boxes mostly inside, ~1% crowd, ~1% crossing the border."""
    rng = np.random.default_rng(seed)
    img_of = np.sort(rng.integers(1, n_images + 1, n_anns))
    xy = rng.uniform(-20, 600, (n_anns, 2)).round(1)
    wh = rng.uniform(2, 120, (n_anns, 2)).round(1)
    cat = rng.integers(1, len(names) + 1, n_anns)
    crowd = (rng.random(n_anns) < 0.01).astype(int)
    images = [{"id": i, "file_name": f"{i:07d}.jpg", "width": 640, "height": 480}
              for i in range(1, n_images + 1)]
    anns = [{"id": k + 1, "image_id": i, "category_id": c, "bbox": [x, y, w, h], "area": w * h,
             "iscrowd": z}
            for k, (i, c, (x, y), (w, h), z) in enumerate(
                zip(img_of.tolist(), cat.tolist(), xy.tolist(), wh.tolist(), crowd.tolist()))]
    return {"images": images, "annotations": anns,
            "categories": [{"id": j + 1, "name": n} for j, n in enumerate(names)]}


def generate(root: Path, n_images: int, n_anns: int) -> list[Path]:
    """Write the super-taxonomy, 3 customer YAMLs pointing at generated COCO files."""
    (root / "driving.yaml").write_text((REPO / "taxonomies/driving/driving.yaml").read_text())
    files = []
    for k, (name, labels) in enumerate(CUSTOMERS.items()):
        yaml = (REPO / f"taxonomies/driving/{name}.yaml").read_text().split("\ndata:")[0]
        ann = root / name / "annotations.json"
        ann.parent.mkdir()
        ni, na = n_images // 3 + (k < n_images % 3), n_anns // 3 + (k < n_anns % 3)
        ann.write_text(json.dumps(make_coco(ni, na, labels, seed=k)))
        (root / f"{name}.yaml").write_text(
            yaml + f"\ndata:\n  - annotations: {ann}\n    images: {root / name / 'images'}\n")
        files.append(ann)
    return files


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MB: VmHWM on Linux (ru_maxrss can carry the
    parent's peak across fork + exec), else ru_maxrss."""
    try:
        with open("/proc/self/status") as f:
            line = next(x for x in f if x.startswith("VmHWM:"))
        return int(line.split()[1]) / 1024  # kB
    except (OSError, StopIteration):
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux units: KiB


def run_merge(root: Path) -> dict:
    import taxdet.supertax as supertax
    from taxdet.datasets import MergeConfig, merge
    base = peak_rss_mb()
    taxset = supertax.load([root])
    t0 = time.perf_counter()
    ds, report = merge(taxset, MergeConfig(check_images=False))
    seconds = time.perf_counter() - t0
    _, anns = report.total()
    return {"seconds": seconds, "peak_mb": peak_rss_mb(), "import_mb": base,
            "images": len(ds), "annotations": anns.read}


def run_coco(root: Path) -> dict:
    from pycocotools.coco import COCO
    base = peak_rss_mb()
    files = sorted(root.glob("*/annotations.json"))
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        cocos = [COCO(str(f)) for f in files]
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "peak_mb": peak_rss_mb(), "import_mb": base,
            "images": sum(len(c.imgs) for c in cocos),
            "annotations": sum(len(c.anns) for c in cocos)}


def measure(side: str, root: Path) -> dict:
    out = subprocess.run([sys.executable, __file__, "--run", side, str(root)], check=True,
                         capture_output=True, text=True, cwd=REPO)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100_000)
    ap.add_argument("--annotations", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=2, help="runs per side; the fastest is kept")
    ap.add_argument("--run", nargs=2, metavar=("SIDE", "DIR"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.run:
        print(json.dumps({"merge": run_merge, "coco": run_coco}[args.run[0]](Path(args.run[1]))))
        return
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate(Path(tmp), args.images, args.annotations)
        print(f"generated {args.images} images, {args.annotations} annotations in 3 files "
              f"({time.perf_counter() - t0:.1f} s)")
        runs = {side: [] for side in ("coco", "merge")}
        for _ in range(args.repeat):
            for side in runs:  # alternate, so both sides see the same machine load
                runs[side].append(measure(side, Path(tmp)))
    report(runs)


def report(runs: dict[str, list[dict]]) -> None:
    best = {side: min(r, key=lambda x: x["seconds"]) for side, r in runs.items()}
    print(f"{'side':<8} {'seconds':>8} {'peak MB':>8} {'net MB':>8}  (net = peak - after imports)")
    for side, r in best.items():
        net_mb = r["peak_mb"] - r["import_mb"]
        print(f"{side:<8} {r['seconds']:>8.2f} {r['peak_mb']:>8.0f} {net_mb:>8.0f}")
    m, c = best["merge"], best["coco"]
    net = (m["peak_mb"] - m["import_mb"]) / (c["peak_mb"] - c["import_mb"])
    print(f"ratio merge/coco: time {m['seconds'] / c['seconds']:.2f} (goal <= 1.5), peak memory "
          f"{m['peak_mb'] / c['peak_mb']:.2f}, net memory {net:.2f} (goal <= 2)")
    print(f"all times: coco {[round(r['seconds'], 2) for r in runs['coco']]}, "
          f"merge {[round(r['seconds'], 2) for r in runs['merge']]}")


if __name__ == "__main__":
    main()
