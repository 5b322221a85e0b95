"""Export a checkpoint's predict model to ONNX or TorchScript, whole or sliced to one customer.

    python tools/export.py --checkpoint runs/exp/best.pt --format onnx --out model.onnx
    python tools/export.py --checkpoint runs/exp/best.pt --customer customer_b \\
        --format onnx --out customer_b.onnx

Writes the model file and a label map beside it (``customer_b.onnx.labels.json``: each output's
labels, the labels not predicted, input and output shapes, post-processing settings). The
graph holds normalisation, the network (EMA weights, eval mode) and per-anchor box decoding;
top-k and NMS run outside it (``taxdet.detection.export.postprocess``, NumPy). After writing,
the file is run once (onnxruntime or ``torch.jit.load``) and compared with the eager model.
Exit 0 on success, 1 on bad input, 2 on usage. See docs/evaluation.md, "Exporting a model".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import taxdet.supertax as supertax
from taxdet.tools import cli_flags as flags

FORMATS = ("onnx", "torchscript")
DEFAULT_OPSET = 17
# |exported - eager| <= ATOL + RTOL x |eager| on the raw outputs of one random image
VERIFY_ATOL, VERIFY_RTOL = 1e-3, 1e-4


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="export.py", description=__doc__.splitlines()[0])
    flags.add_checkpoint(p, "of tools/train.py; its EMA weights are exported", required=True)
    p.add_argument("--customer", metavar="NAME",
                   help="slice the class head to this taxonomy's labels (default: every "
                   "super-taxonomy class)")
    p.add_argument("--format", required=True, choices=FORMATS,
                   help="onnx (run with onnxruntime) or torchscript (torch.jit.load)")
    flags.add_out(p, "the model file (the label map goes beside it as FILE.labels.json)",
                  required=True)
    p.add_argument("--image-size", type=int, metavar="N",
                   help="input side in pixels, a multiple of 128 (default: the checkpoint's)")
    p.add_argument("--opset", type=int, default=DEFAULT_OPSET, metavar="N",
                   help=f"ONNX opset version (default: {DEFAULT_OPSET})")
    flags.add_hierarchy_decoding(p, "write the hierarchy among the outputs into the label "
                                 "map, so the post-processing scores each parent output as the "
                                 "max over its descendant outputs")
    flags.verbosity(p)
    return p


def check_args(args: argparse.Namespace) -> None:
    from taxdet.core.errors import ConfigError
    if args.opset < 11:
        raise ConfigError(f"--opset {args.opset}: must be at least 11")
    if args.image_size is not None and args.image_size <= 0:
        raise ConfigError(f"--image-size {args.image_size}: must be a positive multiple of 128")
    if args.format == "onnx":  # before any work: the written file is run to verify it
        from taxdet.detection.export.runtime import require_onnxruntime
        require_onnxruntime()


def verify(exported, out: Path, labels: Path) -> float:
    """Run the written file on one random image; return max |exported - eager| over both
    outputs (``RuntimeError`` beyond ``VERIFY_ATOL`` + ``VERIFY_RTOL`` x |eager|: an export
    bug, not bad input)."""
    import numpy as np
    import torch

    from taxdet.detection.export.exporter import example_input
    from taxdet.detection.export.runtime import ExportedModel
    x = example_input(exported.image_size, seed=1)
    with torch.no_grad():
        want = [t.numpy() for t in exported.net(x)]
    got = ExportedModel(out, labels).raw(x.numpy())
    if not all(np.allclose(g, w, rtol=VERIFY_RTOL, atol=VERIFY_ATOL) for g, w in zip(got, want)):
        worst = max(float(np.abs(g - w).max()) for g, w in zip(got, want))
        raise RuntimeError(f"{out}: the exported model differs from the eager one by up to "
                           f"{worst:.3g} (tolerance {VERIFY_ATOL} + {VERIFY_RTOL} x |value|)")
    return max(float(np.abs(g - w).max()) for g, w in zip(got, want))


def hierarchy_summary(exported) -> str:
    """``"on: person = max(person, pedestrian_adult, ...)"`` per parent output, or ``"off"``
    (also when no output is a parent of another, e.g. a customer's leaf classes)."""
    groups = exported.post.hierarchy
    if not groups:
        return "off"
    names = ["/".join(labels) for labels in exported.outputs.labels]
    return "on: " + "; ".join(f"{names[g[0]]} = max({', '.join(names[i] for i in g)})"
                              for g in groups)


def run(args: argparse.Namespace) -> int:
    check_args(args)
    from taxdet.core.files import check_outputs
    from taxdet.detection.export.exporter import build_export, label_map_path, write_export
    check_outputs({"--out": args.out, "label map": label_map_path(args.out)}, [args.checkpoint])
    exported = build_export(args.checkpoint, customer=args.customer, image_size=args.image_size,
                            hierarchy_decoding=args.hierarchy_decoding)
    out, labels = write_export(exported, args.out, args.format, args.opset)
    diff = verify(exported, out, labels)
    o = exported.outputs
    what = f"customer {o.customer}" if o.customer else "all super-taxonomy classes"
    print(f"wrote {out} ({args.format}, {exported.config.model.name} at {exported.image_size} px, "
          f"{len(o.columns)} class outputs: {what}; max |exported - eager| = {diff:.2g})")
    print(f"wrote {labels} (hierarchy-consistent decoding: {hierarchy_summary(exported)})")
    if o.not_predicted:
        print(f"not predicted (maps_to: null): {', '.join(o.not_predicted)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags.start_logging(args)
    return supertax.run_cli(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
