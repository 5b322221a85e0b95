"""Validate taxonomy YAML files and print their coverage matrix.

    python tools/validate_taxonomies.py taxonomies/driving [more files or folders] [--json]

Prints every problem as ``file:line:col: error|warning: message``, then one
coverage matrix per super-taxonomy. Exit 0 valid (warnings allowed), 1 invalid,
2 usage or I/O error.
"""

import argparse
import importlib.util
import sys
from pathlib import Path

if importlib.util.find_spec("supertax") is None:  # run from a checkout without installation
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from supertax import InputError, validate_files, validation_report as report  # noqa: E402


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="validate_taxonomies.py",
                                     description=__doc__.split("\n")[0])
    parser.add_argument("paths", nargs="+",
                        help="taxonomy YAML files or folders (searched recursively)")
    parser.add_argument("--json", action="store_true",
                        help="print the report as JSON (default: as text)")
    return parser


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        validation = validate_files(args.paths)
    except InputError as exc:
        print(f"validate_taxonomies.py: error: {exc}", file=sys.stderr)
        return report.EXIT_USAGE
    if not validation.files:
        print(f"validate_taxonomies.py: error: no .yaml/.yml files in {', '.join(args.paths)}",
              file=sys.stderr)
        return report.EXIT_USAGE
    print(report.render_json(validation) if args.json else report.render_text(validation))
    return report.exit_code(validation)


if __name__ == "__main__":
    sys.exit(main())
