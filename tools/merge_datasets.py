"""Merge customers' COCO datasets into one super-dataset COCO file, and print the merge report.

    python tools/merge_datasets.py --taxonomies taxonomies/driving --out runs/super.json \\
        [--report runs/report.json] [--allow-unmapped] [--no-check-images] [--super-taxonomy NAME]

The report (printed, and as JSON with ``--report``) counts what was kept, dropped or changed
per file and taxonomy, and the kept boxes per class and customer. The customers' image fields
(``date_captured``, ...) are copied into the super-dataset.

Exit status: 0 on success, 1 on bad data or taxonomies (message on stderr), 2 on usage errors.
"""

from __future__ import annotations

import argparse
import json
import sys

import taxdet.supertax as supertax
from taxdet.core.files import check_outputs, taxonomy_inputs, write_atomic
from taxdet.datasets import MergeConfig, merge
from taxdet.tools import cli_flags as flags


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="merge_datasets.py", description=__doc__.splitlines()[0])
    flags.add_taxonomies(ap, "one super-taxonomy and its customers", required=True)
    ap.add_argument("--super-taxonomy", metavar="NAME",
                    help="the super-taxonomy to merge into, when the taxonomy files hold "
                    "several (default: the only one)")
    flags.add_out(ap, "the super-dataset COCO file", required=True)
    ap.add_argument("--report", metavar="JSON",
                    help="also write the merge report as JSON here (default: not written)")
    ap.add_argument("--allow-unmapped", action="store_true",
                    help="drop (and count) annotations whose category the taxonomy does not name")
    ap.add_argument("--no-check-images", action="store_true",
                    help="skip opening every image (no content hashes, no duplicate detection)")
    ap.add_argument("--duplicates", choices=("report", "error"), default="report",
                    help="same image bytes seen twice: keep and report, or fail "
                    "(default: %(default)s)")
    flags.add_overwrite(ap, "existing --out / --report files that merge_datasets.py did not "
                        "write")
    flags.verbosity(ap)
    return ap


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flags.start_logging(args)
    cfg = MergeConfig(allow_unmapped=args.allow_unmapped, check_images=not args.no_check_images,
                      duplicates=args.duplicates)
    return supertax.run_cli(lambda: run(args, cfg))


def run(args: argparse.Namespace, cfg: MergeConfig) -> int:
    taxset = supertax.load(args.taxonomies, super_name=args.super_taxonomy)
    outputs = {"--out": args.out, "--report": args.report}
    rule = {"tool": "merge_datasets", "overwrite": args.overwrite}
    check_outputs(outputs, taxonomy_inputs(taxset), **rule)  # before the slow part
    dataset, report = merge(taxset, cfg)
    check_outputs(outputs, [s.file for s in dataset.samples], **rule)
    dataset.write(args.out)
    print(report.table())
    print(f"wrote {len(dataset)} images to {args.out}")
    if args.report:
        write_atomic(args.report, json.dumps(report.to_dict(), indent=1))
        print(f"wrote report to {args.report}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
