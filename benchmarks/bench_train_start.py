"""Time from process start to the first training step on a prepared ``super.json``, against
``json.load`` + pycocotools ``COCO()`` of the same file.

Generates (in a temp dir, deleted afterwards) a ``super.json`` over the driving taxonomies with
--images images and --boxes-per-image boxes each (1M annotations at the default 100k x 10). The
images are 16 tiny PNG files that every record points at (each record has its own content hash,
so the split draws from all of them): nothing is decoded before training, as with any prepared
super-dataset. Then, alternating, --repeat times each:

* train: a fresh process runs ``tools/train.py --data super.json --taxonomies ...`` (D0 at
  128 px, batch 2, no loader workers) and stops right after its first optimizer step; timed from
  just before the process is spawned (interpreter start and imports included) to the end of that
  step. The run does everything a real start does: read and check ``super.json`` against the
  taxonomies, split, write ``split.json``, build the sampler, the model and the loaders.
* coco: ``pycocotools.coco.COCO(path)`` (``json.load`` + index) in this process.

Prints the fastest of each and the ratio train / coco. Goal: <= 2. Usage::

    python benchmarks/bench_train_start.py [--images 100000] [--boxes-per-image 10] [--repeat 1]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
TAXONOMIES = REPO / "taxonomies" / "driving"
FIRST_STEP = "first training step done at"


def tiny_images(folder: Path, n: int = 16) -> list[str]:
    """``n`` 64 x 48 PNG files of random colours; their paths."""
    import cv2
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    paths = []
    for i in range(n):
        path = folder / f"{i:02d}.png"
        cv2.imwrite(str(path), rng.integers(0, 255, (48, 64, 3), dtype=np.uint8))
        paths.append(str(path))
    return paths


def make_super_json(path: Path, n_images: int, boxes_per_image: int) -> int:
    """Write a ``super.json`` of random boxes in the classes each image's taxonomy labels;
    returns the number of annotations."""
    import taxdet.supertax as supertax
    from taxdet.datasets.superset import SampleColumns, SuperDataset, build_samples
    taxset = supertax.load([TAXONOMIES])
    rng = np.random.default_rng(0)
    files = tiny_images(path.parent / "images")
    tax_of = rng.integers(0, len(taxset.taxonomies), n_images)
    n_boxes = n_images * boxes_per_image
    box_image = np.repeat(np.arange(n_images), boxes_per_image)
    labeled = [np.flatnonzero(taxset.masks[t]) for t in range(len(taxset.taxonomies))]
    classes = np.array([cols[k % len(cols)] for cols, k in zip(
        (labeled[t] for t in tax_of[box_image]), rng.integers(0, 1 << 30, n_boxes))], np.int64)
    xy = rng.uniform(0, 40, (n_boxes, 2))
    wh = rng.uniform(4, 24, (n_boxes, 2))
    cols = SampleColumns(
        np.arange(1, n_images + 1), [files[i % len(files)] for i in range(n_images)],
        np.full(n_images, 64), np.full(n_images, 48),
        [taxset.taxonomies[t].name for t in tax_of], np.arange(1, n_images + 1),
        [f"{i:032x}" for i in range(n_images)], box_image,
        np.concatenate([xy, np.minimum(xy + wh, [64, 48])], 1).astype(np.float32), classes,
        np.ones(n_boxes, np.float32), np.arange(1, n_boxes + 1))
    SuperDataset(build_samples(cols, taxset), taxset).write(path)
    return n_boxes


def time_train(data: Path, out: Path) -> float:
    """Seconds from spawning ``tools/train.py`` to the end of its first optimizer step."""
    flags = ["--data", str(data), "--taxonomies", str(TAXONOMIES), "--output", str(out),
             "--overwrite", "--image-size", "128", "--batch-size", "2", "--workers", "0",
             "--device", "cpu", "--steps", "1", "--run.progress", "false"]
    env = dict(os.environ, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    start = time.time()
    proc = subprocess.run([sys.executable, __file__, "--child", *flags], cwd=REPO, env=env,
                          capture_output=True, text=True)
    done = [line for line in proc.stdout.splitlines() if line.startswith(FIRST_STEP)]
    if proc.returncode != 0 or not done:
        sys.exit(f"the training process failed:\n{proc.stderr[-3000:]}")
    return float(done[0].split()[-1]) - start


def child(flags: list[str]) -> None:
    """Run tools/train.py and exit right after the first optimizer step, printing the time."""
    from taxdet.detection.engine import trainer_base as trainer
    real = trainer.train_step

    def first_step(*args, **kwargs):
        real(*args, **kwargs)
        print(f"{FIRST_STEP} {time.time()}", flush=True)
        os._exit(0)

    trainer.train_step = first_step
    from taxdet.tools.train import main
    sys.exit(main(flags))


def time_coco(path: Path) -> float:
    from pycocotools.coco import COCO
    t0 = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        COCO(str(path))
    return time.perf_counter() - t0


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=100_000, help="images in super.json")
    ap.add_argument("--boxes-per-image", type=int, default=10, help="boxes of every image")
    ap.add_argument("--repeat", type=int, default=1, help="runs per side; the fastest is kept")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "super.json"
        t0 = time.perf_counter()
        n_boxes = make_super_json(data, args.images, args.boxes_per_image)
        print(f"generated super.json: {args.images} images, {n_boxes} annotations, "
              f"{data.stat().st_size / 1e6:.0f} MB ({time.perf_counter() - t0:.1f} s)")
        runs: dict[str, list[float]] = {"coco": [], "train": []}
        for _ in range(args.repeat):  # alternate, so both sides see the same machine load
            runs["coco"].append(time_coco(data))
            runs["train"].append(time_train(data, Path(tmp) / "run"))
    coco, train = min(runs["coco"]), min(runs["train"])
    print(f"coco  (json.load + COCO() index)                 {coco:8.2f} s")
    print(f"train (process start -> end of first step)       {train:8.2f} s")
    print(f"ratio train / coco: {train / coco:.2f} (goal <= 2)")
    print(f"all times: coco {[round(t, 2) for t in runs['coco']]}, "
          f"train {[round(t, 2) for t in runs['train']]}")


if __name__ == "__main__":
    main()
