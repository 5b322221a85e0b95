"""Latency per image on the CPU of the exported predict network: torch eager vs ONNX Runtime,
full class head vs one customer's sliced head, in one run on the same images.

Timed per image (batch 1), after warm-up, the variants interleaved image by image so they share
the machine's load:

- ``eager full``:    ``ExportNet`` (normalisation + EfficientDet + box decoding), all K columns
- ``eager sliced``:  the same with the class head sliced to ``--customer``'s columns
- ``ort full``, ``ort sliced``: the same two graphs exported to ONNX, run by onnxruntime
- ``eager predict``: the checkpoint path, ``PredictBench`` (network + effdet top-k + NMS)

and, for reference, the NumPy post-processing (top-k + NMS) of the full and sliced outputs.
Medians over ``--repeats`` x ``--images``; ratios to ``eager full``. Weights do not change the
time: without ``--checkpoint`` a fresh model for the driving taxonomies is used.

    python benchmarks/bench_export.py [--image-size 512] [--customer customer_b] [--threads 1]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

import taxdet.supertax as supertax
from taxdet.datasets.transforms import normalize
from taxdet.detection.export.export_net import ExportNet
from taxdet.detection.export.exporter import onnx_bytes
from taxdet.detection.export.postprocess import detect
from taxdet.detection.export.runtime import require_onnxruntime
from taxdet.detection.export.sliced_head import customer_outputs, slice_class_head
from taxdet.detection.model.build import ModelConfig, create_model
from taxdet.detection.model.detector_wrappers import PredictBench

DRIVING = Path(__file__).resolve().parents[1] / "taxonomies" / "driving"


def build_model(args) -> tuple[torch.nn.Module, supertax.TaxonomySet]:
    """The checkpoint's EMA model resized to ``--image-size``, or a fresh one."""
    if args.checkpoint:
        from taxdet.detection.export.exporter import build_export
        exported = build_export(args.checkpoint, image_size=args.image_size)
        return exported.net.model, exported.taxset
    taxset = supertax.load([DRIVING])
    torch.manual_seed(0)
    model = create_model(ModelConfig(args.model, image_size=args.image_size), taxset.num_classes)
    return model.eval(), taxset


def ort_session(net: ExportNet, folder: Path, name: str, threads: int):
    ort = require_onnxruntime()
    path = folder / f"{name}.onnx"
    path.write_bytes(onnx_bytes(net))
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def variants(args, folder: Path) -> tuple[dict, dict]:
    """{name: image [1, 3, S, S] float32 ndarray -> outputs} and the sliced head's size."""
    model, taxset = build_model(args)
    cols = customer_outputs(taxset, args.customer).columns
    full = ExportNet(model, taxset.num_classes).eval()
    sliced = ExportNet(slice_class_head(model, cols).eval(), len(cols)).eval()
    sessions = {n: ort_session(net, folder, n, args.threads)
                for n, net in (("full", full), ("sliced", sliced))}
    bench = PredictBench(model).eval()
    one, size = torch.ones(1), torch.tensor([[args.image_size, args.image_size]])

    def eager(net):
        return lambda x: net(torch.from_numpy(x))

    def ort(name):
        return lambda x: sessions[name].run(None, {"images": x})

    fns = {"eager full": eager(full), "eager sliced": eager(sliced),
           "ort full": ort("full"), "ort sliced": ort("sliced"),
           "eager predict": lambda x: bench(normalize(torch.from_numpy(x)), one, size)}
    info = {"K": taxset.num_classes, "K_sliced": len(cols), "A": int(full.anchors.shape[0])}
    return fns, info


def time_all(fns: dict, images: list[np.ndarray], repeats: int, warmup: int
             ) -> tuple[dict[str, list[float]], dict[str, tuple]]:
    """Seconds per call of every variant, interleaved per image; and the last raw outputs of
    the ONNX variants (for the post-processing timing)."""
    times: dict[str, list[float]] = {name: [] for name in fns}
    last: dict[str, tuple] = {}
    with torch.inference_mode():
        for r in range(warmup + repeats):
            for x in images:
                for name, fn in fns.items():
                    start = time.perf_counter()
                    out = fn(x)
                    if r >= warmup:
                        times[name].append(time.perf_counter() - start)
                    last[name] = out
    return times, last


def time_postprocess(outputs: tuple, size: int, repeats: int) -> list[float]:
    boxes, logits = outputs
    out = []
    for _ in range(repeats):
        start = time.perf_counter()
        detect(boxes[0], logits[0], 1.0, (size, size))
        out.append(time.perf_counter() - start)
    return out


def report(times: dict[str, list[float]], info: dict, args) -> None:
    base = statistics.median(times["eager full"])
    print(f"{args.model} at {args.image_size} px, A={info['A']} anchors, K={info['K']} "
          f"columns, sliced to {args.customer}: K'={info['K_sliced']}; {args.threads} thread(s); "
          f"{len(times['eager full'])} timed calls each; load average "
          f"{os.getloadavg()[0]:.2f}")
    print(f"{'variant':<24} {'median ms/image':>16} {'ratio to eager full':>20}")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"{name:<24} {med * 1e3:>16.1f} {med / base:>19.3f}x")
    pairs = [("eager sliced", "eager full"), ("ort full", "eager full"),
             ("ort sliced", "ort full"), ("ort sliced", "eager full")]
    med = {name: statistics.median(values) for name, values in times.items()}
    print("ratios: " + "; ".join(f"{a} / {b} = {med[a] / med[b]:.3f}" for a, b in pairs))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", help="time this checkpoint's model (default: a fresh one)")
    p.add_argument("--model", default="efficientdet_d0",
                   help="effdet model without --checkpoint (default: efficientdet_d0)")
    p.add_argument("--image-size", type=int, default=512, help="input side (default: 512)")
    p.add_argument("--customer", default="customer_b",
                   help="taxonomy whose columns the sliced head keeps (default: customer_b)")
    p.add_argument("--images", type=int, default=4, help="distinct images (default: 4)")
    p.add_argument("--repeats", type=int, default=5, help="timed rounds (default: 5)")
    p.add_argument("--warmup", type=int, default=1, help="untimed rounds first (default: 1)")
    p.add_argument("--threads", type=int, default=1,
                   help="intra-op threads for torch and onnxruntime (default: 1)")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (1, 3, args.image_size, args.image_size)).astype(np.float32)
              for _ in range(args.images)]
    with tempfile.TemporaryDirectory() as tmp:
        fns, info = variants(args, Path(tmp))
        times, last = time_all(fns, images, args.repeats, args.warmup)
    times["numpy postprocess full"] = time_postprocess(last["ort full"], args.image_size,
                                                       args.repeats * args.images)
    times["numpy postprocess sliced"] = time_postprocess(last["ort sliced"], args.image_size,
                                                         args.repeats * args.images)
    report(times, info, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
