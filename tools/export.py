"""Export a checkpoint's predict model to ONNX or TorchScript, whole or sliced to one customer.

    python tools/export.py --checkpoint runs/exp/best.pt --format onnx --out model.onnx
    python tools/export.py --checkpoint runs/exp/best.pt --customer customer_b \\
        --format onnx --out customer_b.onnx

Writes the model file and a label map beside it (``customer_b.onnx.labels.json``: each output's
labels, the labels not predicted, input and output shapes, post-processing settings). The
graph holds normalisation, the network (EMA weights, eval mode) and per-anchor box decoding;
top-k and NMS run outside it (``taxdet.detection.export.postprocess``, NumPy). Before the
files are moved into place, the written file is run (onnxruntime or ``torch.jit.load``) on a few
real images and its detections compared with the eager model's
(``taxdet.detection.export.export_check``); a failed check is ``error: ...``, exit 1, and leaves
no file behind (``--no-verify`` skips it). Exit 0 on success, 1 on bad input or a failed check,
2 on usage. See docs/evaluation.md, "Exporting a model".
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import taxdet.supertax as supertax
from taxdet.tools import cli_flags as flags

FORMATS = ("onnx", "torchscript")
DEFAULT_OPSET = 17


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
    p.add_argument("--sample-images", type=Path, metavar="DIR",
                   help="check the export on up to 4 images of DIR (default: "
                   "data/demo/test/images when it exists, else generated images)")
    p.add_argument("--no-verify", action="store_true",
                   help="write the files without checking that the exported model's detections "
                   "equal the eager model's (default: checked; a failed check writes nothing)")
    flags.add_overwrite(p, "existing --out / label map files that export.py did not write")
    flags.verbosity(p)
    return p


def check_args(args: argparse.Namespace) -> None:
    from taxdet.core.errors import ConfigError
    if args.opset < 11:
        raise ConfigError(f"--opset {args.opset}: must be at least 11")
    if args.image_size is not None and args.image_size <= 0:
        raise ConfigError(f"--image-size {args.image_size}: must be a positive multiple of 128")
    if args.format == "onnx" and not args.no_verify:  # before any work: the file is run
        from taxdet.detection.export.runtime import require_onnxruntime
        require_onnxruntime()


def hierarchy_summary(exported) -> str:
    """``"on: person = max(person, pedestrian_adult, ...)"`` per parent output, or ``"off"``
    (also when no output is a parent of another, e.g. a customer's leaf classes)."""
    post = exported.post
    if not post.hierarchy and not post.excluded:
        return "off"
    names = ["/".join(labels) for labels in exported.outputs.labels]
    own_left_out = set(post.descendant_decoded)   # their max leaves out their own score
    parts = [f"{names[g[0]]} = max({', '.join(names[i] for i in g[g[0] in own_left_out:])})"
             for g in post.hierarchy]
    parts += [f"{names[i]} excluded" for i in post.excluded]
    return "on: " + "; ".join(parts)


def run(args: argparse.Namespace) -> int:
    check_args(args)
    from taxdet.core.files import check_outputs
    from taxdet.detection.export.export_check import check_export, sample_batch
    from taxdet.detection.export.exporter import build_export, label_map_path, write_export
    check_outputs({"--out": args.out, "label map": label_map_path(args.out)}, [args.checkpoint],
                  tool="export", overwrite=args.overwrite)
    exported = build_export(args.checkpoint, customer=args.customer, image_size=args.image_size,
                            hierarchy_decoding=args.hierarchy_decoding)
    batch = None if args.no_verify else sample_batch(args.sample_images, exported.image_size)
    checked = []  # the check's result, once the staged files passed it

    def verify(model: Path, labels: Path) -> None:
        checked.append(check_export(exported, model, labels, batch))
    out, labels = write_export(exported, args.out, args.format, args.opset,
                               verify=None if batch is None else verify)
    o = exported.outputs
    what = f"customer {o.customer}" if o.customer else "all super-taxonomy classes"
    print(f"wrote {out} ({args.format}, {exported.config.model.name} at {exported.image_size} px, "
          f"{len(o.columns)} class outputs: {what})")
    print("checked: " + (checked[0].summary() if checked else "not (--no-verify)"))
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
