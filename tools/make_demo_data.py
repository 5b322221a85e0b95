"""Generate the synthetic multi-customer street-scene demo dataset (COCO + images), or with
--classification its classification world (object crops, one ImageFolder per customer).

    python tools/make_demo_data.py data/demo [--seed 0] [--images-per-customer 300]
        [--taxonomies PATH ...] [--super-taxonomy NAME]
    python tools/make_demo_data.py data/demo_classifier --classification [--crop-size 64]
    python tools/make_demo_data.py data/warehouse --world warehouse   # second ablation world
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import taxdet.supertax as supertax
from taxdet.datasets.demo import DemoConfig, generate_demo
from taxdet.datasets.demo_classification import generate_crops
from taxdet.datasets.warehouse_demo import generate_warehouse
from taxdet.tools import cli_flags as flags

DEFAULT_TAXONOMIES = Path(__file__).resolve().parents[1] / "taxonomies" / "driving"
# --world: (generator, default taxonomies, default images per customer)
WORLDS = {"driving": (generate_demo, DEFAULT_TAXONOMIES, 300),
          "warehouse": (generate_warehouse, DEFAULT_TAXONOMIES.with_name("warehouse"), 150)}


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="make_demo_data.py", description=__doc__.split("\n")[0])
    p.add_argument("out", help="output folder (one sub-folder per customer, and test/)")
    p.add_argument("--seed", type=int, default=0, metavar="N",
                   help="every image is a pure function of the seed: the same seed writes "
                   "identical files (default: %(default)s)")
    p.add_argument("--images-per-customer", type=int, default=None, metavar="N",
                   help="images per customer folder; with --classification, the scenes whose "
                   "objects are cropped per customer (default: 300; with --classification 150)")
    p.add_argument("--test-images", type=int, default=150, metavar="N",
                   help="images of the fully labeled test/ split (default: %(default)s)")
    p.add_argument("--image-size", type=int, default=256, metavar="N",
                   help="side of the square images in pixels, at least 64 "
                   "(default: %(default)s)")
    p.add_argument("--format", choices=("jpg", "png"), default="jpg",
                   help="image file format; jpg at quality 92 (default: %(default)s)")
    p.add_argument("--world", choices=list(WORLDS), default="driving",
                   help="which synthetic world: driving (street scenes) or warehouse (shelf "
                   "racks, the second ablation world; default taxonomies/warehouse, 150 images "
                   "per customer) (default: %(default)s)")
    flags.add_taxonomies(p, "one customer folder per taxonomy (default: taxonomies/driving)",
                         default=[str(DEFAULT_TAXONOMIES)])
    p.add_argument("--classification", action="store_true",
                   help="write the classification world instead: crops of the objects each "
                   "customer labels, in <out>/<customer>/<label>/ (ImageFolder layout; labels "
                   "with maps_to: null, such as Dog, are the OOD images)")
    p.add_argument("--crop-size", type=int, default=64, metavar="N",
                   help="with --classification: side of the square crops in pixels, at least "
                   "16 (default: %(default)s)")
    p.add_argument("--super-taxonomy", metavar="NAME",
                   help="the super-taxonomy whose customers to generate, when the taxonomy "
                   "files hold several (default: the only one)")
    flags.add_overwrite(p, "existing annotation files that make_demo_data.py did not write")
    flags.verbosity(p)
    return p


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flags.start_logging(args)
    return supertax.run_cli(lambda: run(args))


def check_demo_outputs(args: argparse.Namespace, taxset) -> None:
    """The output rule (``taxdet.core.files.check_outputs``): the customers' folder names are
    safe, and the annotation files (or crops.json) are new, this tool's own earlier output, or
    ``--overwrite``; the taxonomy YAML files are never written over."""
    from taxdet.core.files import check_outputs
    from taxdet.datasets.demo import TEST, customer_folders
    from taxdet.datasets.demo_classification import SUMMARY
    out = Path(args.out)
    folders = customer_folders(out, taxset)
    if args.classification:
        outputs = {SUMMARY: out / SUMMARY}
    else:
        outputs = {f"{name}/{file}": folder / file for name, folder in folders.items()
                   for file in ("annotations.json", "annotations_full.json")}
        outputs[f"{TEST}/annotations.json"] = out / TEST / "annotations.json"
    yamls = [t.path for t in (taxset.super, *taxset.taxonomies) if t.path]  # data: not read
    check_outputs(outputs, yamls, tool="make_demo_data",
                  overwrite=args.overwrite)


def run(args: argparse.Namespace) -> int:
    generate, world_taxonomies, world_images = WORLDS[args.world]
    if args.taxonomies == [str(DEFAULT_TAXONOMIES)]:
        args.taxonomies = [str(world_taxonomies)]
    if args.classification and args.world != "driving":
        raise supertax.ConfigError("--classification writes the driving world only")
    taxset = supertax.load(args.taxonomies, super_name=args.super_taxonomy)
    check_demo_outputs(args, taxset)
    if args.classification:
        return run_classification(args, taxset)
    cfg = DemoConfig(seed=args.seed, images_per_customer=args.images_per_customer or world_images,
                     test_images=args.test_images, image_size=args.image_size,
                     image_format=args.format)
    t0 = time.perf_counter()
    summaries = generate(args.out, taxset, cfg)
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s (seed {args.seed})")
    for s in summaries:
        objects = ", ".join(f"{k} {n}" for k, n in sorted(s.objects.items()))
        labels = ", ".join(f"{k} {n}" for k, n in sorted(s.annotations.items()))
        print(f"  {s.name:<11} {s.images:4d} images | drawn: {objects}\n"
              f"  {'':<11} {'':4s}        | annotations.json: {labels}")
    return 0


def run_classification(args: argparse.Namespace, taxset) -> int:
    cfg = DemoConfig(seed=args.seed, images_per_customer=args.images_per_customer or 150,
                     image_size=args.image_size)
    t0 = time.perf_counter()
    summary = generate_crops(args.out, taxset, cfg, args.crop_size)
    print(f"wrote {args.out} in {time.perf_counter() - t0:.1f} s (seed {args.seed}, "
          f"{args.crop_size} px crops)")
    for name, labels in summary.items():
        print(f"  {name:<11} " + ", ".join(f"{label} {n}" for label, n in labels.items()))
    return 0


if __name__ == "__main__":
    sys.exit(main())
