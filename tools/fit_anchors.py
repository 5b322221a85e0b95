"""Anchor fit: how well the anchors can match the merged dataset's boxes, and better settings.

    python tools/fit_anchors.py --taxonomies taxonomies/driving --image-size 256 \\
        [--out anchors.yaml]

Prints the best-possible recall (BPR: the share of boxes whose best anchor reaches IoU 0.5)
and the mean best IoU of the current anchors (``--config``'s, else effdet's defaults), then the
best settings found (anchor scale x aspect ratios). ``--out`` writes the best as a config
snippet for ``tools/train.py --config``. Exit 0 on success, 1 on bad input, 2 on usage.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import taxdet.supertax as supertax
from taxdet.tools import cli_flags as flags


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="fit_anchors.py", description=__doc__.splitlines()[0])
    flags.add_taxonomies(p, "their datasets are merged", required=True)
    p.add_argument("--super-taxonomy", metavar="NAME",
                   help="the super-taxonomy to use when the files hold several (default: none)")
    p.add_argument("--image-size", type=int, default=512, metavar="N",
                   help="model input size: images are resized so the long side is N "
                   "(default: 512)")
    p.add_argument("--config", metavar="YAML",
                   help="a train.py --config file whose model anchors are the current ones "
                   "(default: effdet's anchors)")
    p.add_argument("--iou", type=float, default=0.5, metavar="X",
                   help="IoU a box's best anchor must reach to count as recalled (default: 0.5)")
    p.add_argument("--top", type=int, default=5, metavar="N",
                   help="how many of the best settings to print (default: 5)")
    flags.add_out(p, "the best settings as a train.py --config snippet (YAML)")
    flags.verbosity(p)
    return p


def run(args: argparse.Namespace) -> int:
    import yaml

    from taxdet.core.files import check_outputs, taxonomy_inputs, write_atomic
    from taxdet.datasets import MergeConfig, merge
    from taxdet.detection.anchors import fit
    taxset = supertax.load(args.taxonomies, super_name=args.super_taxonomy)
    inputs = taxonomy_inputs(taxset) + ([Path(args.config)] if args.config else [])
    check_outputs({"--out": args.out}, inputs)
    dataset, _ = merge(taxset, MergeConfig(check_images=False))
    boxes = fit.model_input_boxes(dataset.samples, args.image_size)
    current = fit.evaluate_spec(current_spec(args.config), boxes, args.image_size, args.iou)
    ranked = fit.search(boxes, args.image_size, args.iou)
    print(f"{len(boxes)} boxes in {len(dataset)} images at {args.image_size} px; "
          f"recalled = best anchor IoU >= {args.iou}")
    print(f"current  {fit.describe(current)}")
    for i, result in enumerate(ranked[:args.top]):
        print(f"best {i + 1}   {fit.describe(result)}")
    if args.out:
        write_atomic(args.out, yaml.safe_dump(fit.config_snippet(ranked[0].spec),
                                              sort_keys=False))
        print(f"wrote {args.out} (use: tools/train.py --config {args.out} ...)")
    return 0


def current_spec(config: str | None):
    """The anchors of a ``train.py --config`` file's model section, else the defaults."""
    from taxdet.detection.model.build import anchor_spec
    from taxdet.detection.model.detector_config import TrainConfig
    from taxdet.detection.training.cli_options import resolve
    cfg = resolve(argparse.Namespace(config=config)) if config else TrainConfig()
    return anchor_spec(cfg.model)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    flags.start_logging(args)
    return supertax.run_cli(lambda: run(args))


if __name__ == "__main__":
    sys.exit(main())
