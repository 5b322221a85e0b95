"""The flags every tool shares, defined once: same spelling, default and help wording everywhere.

Standard library only (a tool's ``--help`` imports no torch). A tool's parser calls the
``add_*`` helpers on itself or on one of its argument groups, then ``verbosity(parser)``; its
``main`` calls ``start_logging(args)`` once the arguments are parsed.

Shared defaults:

* ``--device auto`` (CUDA when available, else the CPU); values ``auto | cpu | cuda | cuda:N``;
* ``--workers 2`` (``DEFAULT_WORKERS``): the default most tools already had (evaluate, predict
  and the training config's ``data.workers``);
* ``--decoding coverage`` (``DECODINGS``; ``--hierarchy-decoding`` and
  ``--no-hierarchy-decoding`` are the older spellings of ``--decoding hierarchy`` and
  ``--decoding own``);
* ``--backend`` (``BACKENDS``) and ``--threads``: the tool's own default (serve.py: ONNX
  Runtime when installed; predict.py: torch).

Output-path flags read ``write <what> to FILE`` (``--json``, ``--markdown``, ``--out``) or
``write <what> into DIR`` (``--draw``).
"""

from __future__ import annotations

import argparse
import logging
import re
from pathlib import Path
from typing import Any

from taxdet.core.logs import add_verbosity_flags, configure_logging

Parser = argparse._ActionsContainer  # a parser or one of its argument groups

DEFAULT_DEVICE = "auto"
DEFAULT_WORKERS = 2
# = taxdet.detection.prediction.hierarchy_decoding.DECODINGS (no torch import here)
DECODINGS = ("own", "hierarchy", "coverage")
DEFAULT_DECODING = "coverage"
DEVICE_PATTERN = re.compile(r"auto|cpu|cuda(:\d+)?")
# = taxdet.detection.export.trunk_backends.BACKENDS (no torch import here)
BACKENDS = ("torch", "onnxruntime")


def tool_logger(tool: str) -> logging.Logger:
    """The logger of ``tools/<tool>.py``: under the project's root logger, also when the file
    runs as a script (``__name__`` is then ``__main__``)."""
    return logging.getLogger(f"taxdet.tools.{tool}")


def device_value(text: str) -> str:
    """``--device`` value check: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``."""
    if not DEVICE_PATTERN.fullmatch(text):
        raise argparse.ArgumentTypeError(f"{text!r}: expected auto, cpu, cuda or cuda:N")
    return text


def _with_default(text: str, default: Any) -> str:
    return f"{text} (default: {default})" if default is not None else text


def add_taxonomies(p: Parser, purpose: str, *, required: bool = False,
                   default: list[str] | None = None, names: tuple[str, ...] = ()) -> None:
    """``--taxonomies PATH ...``: taxonomy YAML files or folders, with what the tool reads
    them for (``purpose``); ``names`` are extra spellings (``--data``)."""
    p.add_argument(*names, "--taxonomies", nargs="+", required=required, default=default,
                   metavar="PATH", help=f"taxonomy YAML files or folders: {purpose}")


def positive_int(text: str) -> int:
    """A whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value}: expected a number >= 1")
    return value


def add_backend(p: Parser, default: str, default_note: str = "%(default)s") -> None:
    """``--backend torch|onnxruntime`` (the trunk backends; ``default_note`` states the default
    and why) and ``--threads N`` (ONNX Runtime's)."""
    p.add_argument("--backend", choices=BACKENDS, default=default,
                   help="inference backend: torch eager, or the model exported to ONNX at "
                   f"start-up and run by ONNX Runtime on the CPU (default: {default_note})")
    p.add_argument("--threads", type=positive_int, metavar="N",
                   help="ONNX Runtime's threads per forward pass (default: its own, one per "
                   "core)")


def add_checkpoint(p: Parser, purpose: str, *, required: bool = False,
                   type_: type = Path) -> None:
    """``--checkpoint CKPT``: a training checkpoint, and what the tool does with it."""
    p.add_argument("--checkpoint", type=type_, required=required, metavar="CKPT",
                   help=f"training checkpoint: {purpose}")


def add_device(p: Parser, purpose: str = "") -> None:
    """``--device auto|cpu|cuda|cuda:N`` (default ``auto``: CUDA when available)."""
    what = f", {purpose}" if purpose else ""
    p.add_argument("--device", type=device_value, default=DEFAULT_DEVICE,
                   help=f"auto | cpu | cuda | cuda:N{what} (auto: CUDA when available; "
                   "default: %(default)s)")


def add_workers(p: Parser, what: str = "image-loading processes") -> None:
    """``--workers N`` (default ``DEFAULT_WORKERS``); ``what`` names what they do."""
    p.add_argument("--workers", type=int, default=DEFAULT_WORKERS, metavar="N",
                   help=f"{what}; 0 loads in the main process (default: %(default)s)")


def add_no_ema(p: Parser) -> None:
    p.add_argument("--no-ema", action="store_true",
                   help="use the raw weights, not the EMA's (default: EMA when saved)")


def add_hierarchy_decoding(p: Parser, effect: str = "") -> None:
    """``--decoding own|hierarchy|coverage`` and its aliases ``--hierarchy-decoding`` (=
    hierarchy) and ``--no-hierarchy-decoding`` (= own), all into ``args.hierarchy_decoding``:
    None (unset: coverage), the name, or True / False from an alias (the library reads each;
    ``taxdet.detection.prediction.hierarchy_decoding``). ``effect`` adds what the tool does
    with the decoding."""
    more = f"; {effect}" if effect else ""
    p.add_argument("--decoding", dest="hierarchy_decoding", choices=DECODINGS, default=None,
                   help="how class scores are decoded before NMS: own (each class its own "
                   "score), hierarchy (a parent scored as the max over itself and its "
                   "descendants: a child's detection is also its ancestors'), coverage "
                   "(hierarchy, with the checkpoint's decoding plan: a class that never trained "
                   "against background is scored from its descendants only, or not predicted)"
                   f"{more} (default: {DEFAULT_DECODING})")
    p.add_argument("--hierarchy-decoding", dest="hierarchy_decoding", action="store_const",
                   const=True, default=None, help="the same as --decoding hierarchy")
    p.add_argument("--no-hierarchy-decoding", dest="hierarchy_decoding", action="store_const",
                   const=False, default=None, help="the same as --decoding own")


def add_overwrite(p: Parser, what: str) -> None:
    p.add_argument("--overwrite", action="store_true",
                   help=f"replace {what} (default: refused)")


def add_output(p: Parser, flag: str, what: str, *, default: Any = None, shown: str | None = None,
               required: bool = False, metavar: str = "FILE") -> None:
    """An output-file flag (``--json``, ``--markdown``, ``--out``): ``write <what> to FILE``;
    ``shown`` is the default's description when the tool derives it after parsing."""
    p.add_argument(flag, type=Path, default=default, required=required, metavar=metavar,
                   help=_with_default(f"write {what} to {metavar}",
                                      shown if shown is not None else default))


def add_json(p: Parser, what: str = "the results") -> None:
    add_output(p, "--json", f"{what} as JSON")


def add_markdown(p: Parser, what: str = "the tables", shown: str | None = None) -> None:
    add_output(p, "--markdown", f"{what} as Markdown", shown=shown)


def add_out(p: Parser, what: str, *, default: Any = None, shown: str | None = None,
            required: bool = False) -> None:
    add_output(p, "--out", what, default=default, shown=shown, required=required)


def add_draw(p: Parser, what: str, default: str = "no drawing") -> None:
    """``--draw DIR``: write <what> into DIR."""
    p.add_argument("--draw", type=Path, metavar="DIR",
                   help=f"write {what} into DIR (default: {default})")


def verbosity(p: argparse.ArgumentParser) -> None:
    """``-v/--verbose`` and ``-q/--quiet`` (``taxdet.core.logs``)."""
    add_verbosity_flags(p)


def start_logging(args: argparse.Namespace) -> None:
    """The one logging set-up of a CLI run: level from ``-v`` / ``-q``."""
    configure_logging(args.verbose - args.quiet)
