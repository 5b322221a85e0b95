"""Anchor fit: how well the anchors can match the merged dataset's boxes, and better settings.

    python tools/fit_anchors.py --taxonomies taxonomies/driving --image-size 256 \\
        [--out anchors.yaml]

Prints the best-possible recall (BPR: the share of boxes whose best anchor reaches IoU 0.5)
and the mean best IoU of the current anchors (``--config``'s, else effdet's defaults), then the
best settings found (anchor scale x aspect ratios). ``--out`` writes the best as a config
snippet for ``tools/train.py --config`` and prints the train.py command that uses it as it
can be run (the same taxonomies and image size; ``--config`` files merge in order). Exit 0 on
success, 1 on bad input, 2 on usage.
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
    flags.add_overwrite(p, "an existing --out file that fit_anchors.py did not write")
    flags.verbosity(p)
    return p


def check_args(args: argparse.Namespace) -> None:
    """``ConfigError`` for settings out of range (before anything is read)."""
    from taxdet.core.errors import ConfigError
    if not 0 < args.iou <= 1:
        raise ConfigError(f"--iou {args.iou}: expected a value in (0, 1]")
    if args.top < 1:
        raise ConfigError(f"--top {args.top}: expected at least 1")
    if args.image_size < 128 or args.image_size % 128:
        raise ConfigError(f"--image-size {args.image_size}: must be a positive multiple of 128 "
                          "(the model input sizes train.py accepts)")


def run(args: argparse.Namespace) -> int:
    import yaml
    check_args(args)

    from taxdet.core.files import check_outputs, taxonomy_inputs, write_atomic
    from taxdet.datasets import MergeConfig, merge
    from taxdet.detection.anchors import fit
    taxset = supertax.load(args.taxonomies, super_name=args.super_taxonomy)
    inputs = taxonomy_inputs(taxset) + ([Path(args.config)] if args.config else [])
    check_outputs({"--out": args.out}, inputs, tool="fit_anchors", overwrite=args.overwrite)
    dataset, _ = merge(taxset, MergeConfig(check_images=False))
    check_outputs({"--out": args.out}, [s.file for s in dataset.samples], tool="fit_anchors",
                  overwrite=args.overwrite)
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
        print(f"wrote {args.out}; train with it:\n  {train_command(args)}")
    return 0


def train_command(args: argparse.Namespace) -> str:
    """The ``tools/train.py`` command that trains with the fitted anchors, as it can be run:
    the same taxonomies and image size, ``--config`` (if given) then ``--out`` merged over
    it."""
    import shlex
    words = ["python", "tools/train.py", "--taxonomies", *map(str, args.taxonomies)]
    if args.super_taxonomy:
        words += ["--super-taxonomy", args.super_taxonomy]
    words += ["--image-size", str(args.image_size)]
    for config in ([args.config] if args.config else []) + [args.out]:
        words += ["--config", str(config)]
    return " ".join(shlex.quote(w) for w in words)


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
