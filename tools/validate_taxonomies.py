"""Validate taxonomy YAML files and print their coverage matrix.

    python tools/validate_taxonomies.py taxonomies/driving [more files or folders] [--json]
        [--no-counts]

Prints every problem as ``file:line:col: error|warning: message``, then one
coverage matrix per super-taxonomy and, when the taxonomies have ``data:`` entries, the
boxes per class and taxonomy in those annotation files (with "did you mean" for category
names that are not labels). Exit 0 valid (warnings allowed), 1 invalid, 2 usage or I/O
error.
"""

import argparse
import sys

from taxdet.supertax import InputError, validate_files
from taxdet.supertax import validation_report as report
from taxdet.tools import cli_flags as flags


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="validate_taxonomies.py",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+",
                        help="taxonomy YAML files or folders (searched recursively)")
    parser.add_argument("--json", action="store_true",
                        help="print the report as JSON (default: as text)")
    parser.add_argument("--no-counts", action="store_true",
                        help="do not read the data: annotation files to count boxes per class "
                        "(faster on large datasets)")
    flags.verbosity(parser)
    return parser


def box_counts(validation, skip: bool) -> list:
    """``DataCounts`` of every valid taxonomy set with data (none when ``skip``)."""
    if skip:
        return []
    from taxdet.datasets.box_counts import count_data
    return [count_data(ts) for ts in validation.sets() if any(t.data for t in ts.taxonomies)]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flags.start_logging(args)
    try:
        validation = validate_files(args.paths)
    except InputError as exc:
        print(f"validate_taxonomies.py: error: {exc}", file=sys.stderr)
        return report.EXIT_USAGE
    if not validation.files:
        print(f"validate_taxonomies.py: error: no .yaml/.yml files in {', '.join(args.paths)}",
              file=sys.stderr)
        return report.EXIT_USAGE
    counts = box_counts(validation, args.no_counts)
    if args.json:
        extra = {"box_counts": {c.taxset.super.name: c.to_dict() for c in counts}}
        print(report.render_json(validation, extra if counts else None))
    else:
        print(report.render_text(validation, [c.render() for c in counts]))
    return report.exit_code(validation)


if __name__ == "__main__":
    sys.exit(main())
