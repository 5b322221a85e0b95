"""Throughput and latency of the pre-labeling service: torch eager one image at a time (the
reference), ONNX Runtime one image at a time, ONNX Runtime with dynamic batching; and what a
customer's sliced head saves against the full-head model.

    python -m benchmarks.bench_serve [--image-sizes 256 512] [--requests 48] [--checkpoint CKPT]

Each variant is a ``PrelabelService`` behind the service's FastAPI app, called in-process
through ASGI (httpx's ``ASGITransport``: the whole protocol, image read from an images root,
decode, letterbox, batching, post-processing, regions; no sockets). A request is Label Studio's
``/predict`` with one task (a 640 x 480 JPEG, customer_b's labeling config). At concurrency C, C
clients send their share of the requests one after another; images/s = requests / wall time,
latency per request. The variants take turns in ``--rounds`` rounds (``--requests / --rounds``
requests each, after ``--warmup`` untimed ones per client), so a change in the machine's load
hits them alike. Variants:

- ``torch``:         backend torch, ``--max-batch 1`` (predict.py's model, one image a pass)
- ``ort``:           backend onnxruntime, ``--max-batch 1``
- ``ort batched``:   backend onnxruntime, ``--max-batch 8 --max-wait-ms 5``
- ``ort full head``: as ``ort batched``, but the head computes all K columns and then keeps the
  customer's (``ServeOptions.full_heads``: the full-head model's cost, the same answers)

The customer-cost line compares ``ort batched`` (the customer's sliced head) with ``ort full
head``: the issue's goal is a ratio <= 1 (a customer's request costs no more than the full-head
model's). With few classes the head is a small share of the network, so expect ~1.

Weights do not change the time: without ``--checkpoint`` a fresh EfficientDet-D0 for the driving
taxonomies (the demo model) is saved as a checkpoint at each image size.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

REPO = Path(__file__).resolve().parents[1]
CUSTOMER_LABELS = ["Pedestrian_adult", "Pedestrian_child", "Car", "Truck"]  # customer_b
# name, backend, max batch, full heads
VARIANTS = (("torch", "torch", 1, False), ("ort", "onnxruntime", 1, False),
            ("ort batched", "onnxruntime", 8, False), ("ort full head", "onnxruntime", 8, True))
SLICED, FULL = "ort batched", "ort full head"


@dataclass
class Measure:
    variant: str
    concurrency: int
    images_s: float
    p50_ms: float
    p95_ms: float


def fresh_checkpoint(path: Path, image_size: int) -> Path:
    """A checkpoint of a fresh D0 at ``image_size`` for the driving taxonomies."""
    import torch
    from timm.utils import ModelEmaV3

    import taxdet.supertax as supertax
    from taxdet.detection.engine.weights_file import save_atomic
    from taxdet.detection.model.build import ModelConfig, create_model
    from taxdet.detection.model.detector_config import TrainConfig
    taxset = supertax.load([REPO / "taxonomies" / "driving"])
    torch.manual_seed(0)
    cfg = TrainConfig(model=ModelConfig("efficientdet_d0", image_size=image_size))
    model = create_model(cfg.model, taxset.num_classes)
    save_atomic({"model": model.state_dict(), "ema": ModelEmaV3(model).state_dict(),
                 "config": cfg.to_dict(), "taxonomies": taxset.to_dict(),
                 "taxonomy_hash": taxset.hash, "step": 0}, path)
    return path


def write_images(root: Path, count: int) -> list[str]:
    """``count`` 640 x 480 JPEGs (smooth gradients plus noise) under ``root``; their URLs."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[0:480, 0:640]
    urls = []
    for i in range(count):
        base = np.stack([xx * 255 / 640, yy * 255 / 480, (xx + yy + 40 * i) % 255], -1)
        image = np.clip(base + rng.normal(0, 30, base.shape), 0, 255).astype(np.uint8)
        cv2.imwrite(str(root / f"img{i}.jpg"), image)
        urls.append(f"/data/local-files/?d=img{i}.jpg")
    return urls


def labeling_config() -> str:
    rows = "".join(f'<Label value="{v}"/>' for v in CUSTOMER_LABELS)
    return (f'<View><Image name="image" value="$image"/><RectangleLabels name="label" '
            f'toName="image">{rows}</RectangleLabels></View>')


async def client_loop(client, bodies: list[dict], latencies: list[float]) -> None:
    for body in bodies:
        start = time.perf_counter()
        r = await client.post("/predict", json=body)
        latencies.append(time.perf_counter() - start)
        if r.status_code != 200:
            raise RuntimeError(f"/predict answered {r.status_code}: {r.text[:300]}")


async def measure(app, urls: list[str], concurrency: int, requests: int, warmup: int
                  ) -> tuple[float, list[float]]:
    """(wall time, latencies), in s, of ``requests`` one-task requests from ``concurrency``
    clients, after ``warmup`` requests per client."""
    import httpx
    config = labeling_config()
    bodies = [{"tasks": [{"id": i, "data": {"image": urls[i % len(urls)]}}], "project": "1.1",
               "label_config": config} for i in range(requests)]
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        await asyncio.gather(*(client_loop(client, bodies[:warmup], []) for _ in
                               range(concurrency)))
        latencies: list[float] = []
        start = time.perf_counter()
        await asyncio.gather(*(client_loop(client, bodies[k::concurrency], latencies)
                               for k in range(concurrency)))
    return time.perf_counter() - start, latencies


def service_app(ckpt: Path, root: Path, backend: str, max_batch: int, full_heads: bool,
                threads: int | None):
    from taxdet.detection.serving.prelabel_service import PrelabelService
    from taxdet.detection.serving.serve_app import create_app
    from taxdet.detection.serving.serve_options import ServeOptions
    service = PrelabelService(ServeOptions(checkpoint=ckpt, images_root=root, backend=backend,
                                           max_batch=max_batch, max_wait_ms=5.0,
                                           threads=threads, full_heads=full_heads))
    return service, create_app(service)


def run_variants(ckpt: Path, root: Path, urls: list[str], args) -> list[Measure]:
    """Every variant at every concurrency, interleaved in ``--rounds`` rounds (variant after
    variant, ``--requests / --rounds`` requests each) so that they share the machine's load."""
    apps = {name: service_app(ckpt, root, backend, batch, full, args.threads)
            for name, backend, batch, full in VARIANTS}
    out = []
    for concurrency in args.concurrency:
        wall = dict.fromkeys(apps, 0.0)
        lat: dict[str, list[float]] = {name: [] for name in apps}
        for service, _ in apps.values():
            service.batcher.batch_sizes.clear()
        for _ in range(args.rounds):
            for name, (_, app) in apps.items():
                took, times = asyncio.run(measure(app, urls, concurrency,
                                                  args.requests // args.rounds, args.warmup))
                wall[name] += took
                lat[name] += times
        for name, (service, _) in apps.items():
            ms = sorted(1000 * t for t in lat[name])
            out.append(Measure(name, concurrency, len(ms) / wall[name], statistics.median(ms),
                               ms[min(len(ms) - 1, int(0.95 * len(ms)))]))
            print(f"  {name:<13} c={concurrency}: {out[-1].images_s:6.2f} img/s  p50 "
                  f"{out[-1].p50_ms:7.1f} ms  p95 {out[-1].p95_ms:7.1f} ms  mean batch "
                  f"{np.mean(service.batcher.batch_sizes):.2f}", flush=True)
    return out


def print_table(size: int, rows: list[Measure]) -> None:
    ref = {m.concurrency: m for m in rows if m.variant == "torch"}
    print(f"\n### {size} px (ratios to torch eager one image at a time, same concurrency)\n")
    print("| variant | concurrency | images/s | p50 ms | p95 ms | throughput x | p50 x |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for m in rows:
        r = ref[m.concurrency]
        print(f"| {m.variant} | {m.concurrency} | {m.images_s:.2f} | {m.p50_ms:.1f} | "
              f"{m.p95_ms:.1f} | {m.images_s / r.images_s:.2f} | {m.p50_ms / r.p50_ms:.2f} |")
    print_customer_cost(rows)


def print_customer_cost(rows: list[Measure]) -> None:
    """Per concurrency: the customer's sliced head against the full-head model, as cost per
    image (1 / throughput) and p50 latency; goal: both ratios <= 1."""
    by = {(m.variant, m.concurrency): m for m in rows}
    for c in sorted({m.concurrency for m in rows}):
        sliced, full = by[(SLICED, c)], by[(FULL, c)]
        cost = full.images_s / sliced.images_s  # (1 / sliced) / (1 / full)
        verdict = "met" if cost <= 1 else "within 5 % noise" if cost <= 1.05 else "missed"
        print(f"customer cost at c={c}: sliced / full head = {cost:.2f} per image, "
              f"{sliced.p50_ms / full.p50_ms:.2f} p50 (goal <= 1: {verdict})")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--image-sizes", type=int, nargs="+", default=[256], metavar="S",
                   help="model input sizes (default: %(default)s)")
    p.add_argument("--checkpoint", type=Path, help="checkpoint to serve (its own image size; "
                   "default: a fresh demo model per --image-sizes)")
    p.add_argument("--concurrency", type=int, nargs="+", default=[1, 8], metavar="C",
                   help="concurrent clients (default: %(default)s)")
    p.add_argument("--requests", type=int, default=48, metavar="N",
                   help="timed requests per variant and concurrency (default: %(default)s)")
    p.add_argument("--rounds", type=int, default=4, metavar="N",
                   help="interleaved rounds the requests are split into (default: %(default)s)")
    p.add_argument("--warmup", type=int, default=2, metavar="N",
                   help="untimed requests per client first (default: %(default)s)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="ONNX Runtime threads (default: its own; torch uses OMP_NUM_THREADS)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    print(f"load average {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} on "
          f"{os.cpu_count()} cores; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '-')}")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "images"
        root.mkdir()
        urls = write_images(root, 8)
        sizes = [None] if args.checkpoint else args.image_sizes
        for size in sizes:
            ckpt = args.checkpoint or fresh_checkpoint(Path(tmp) / f"d0_{size}.pt", size)
            print(f"\n{ckpt.name}: {args.requests} one-task /predict requests per row")
            rows = run_variants(ckpt, root, urls, args)
            print_table(size or 0, rows)
    print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
