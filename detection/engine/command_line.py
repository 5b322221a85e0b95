"""A training command line: a ``--section.field`` flag for every field of a config of sections,
short aliases for the common ones, ``parse_args`` (unknown flags get a "did you mean"), and
``resolve``: defaults < the checkpoint's config (``--resume``) < YAML file (``--config``) < flags.

A ``CommandLine`` names the config class and its flag cosmetics; each task passes its own
(the detector's ``taxdet.detection.training.cli_options.DETECTION``, the classifier's
``taxdet.detection.classification.classifier_config.CLASSIFIER``).

Types, defaults and help texts are read from the config dataclasses' fields
(``taxdet.detection.engine.config_sections``); nothing here repeats them. Building the parser
imports no torch, effdet or albumentations (a training tool's ``--help`` stays fast).
"""

from __future__ import annotations

import argparse
import dataclasses
import types
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Literal, Union, cast, get_args, get_origin, get_type_hints

import yaml

from taxdet.core.errors import ConfigError, InputNotFoundError
from taxdet.core.names import did_you_mean
from taxdet.detection.engine.config_sections import Sections, coerce
from taxdet.detection.engine.run_folder import check_resume_overwrite


@dataclass(frozen=True)
class CommandLine:
    """What a training command line is built from: the config class (sections of typed fields,
    with ``from_dict``), one ``--help`` group per section (in this order), short aliases
    (``lr`` -> ``optim.lr``), metavars, flags taking several words, and defaults shown as
    another flag."""

    config: type[Sections]
    sections: dict[str, str]
    aliases: dict[str, str]
    metavars: dict[str, str] = field(default_factory=dict)
    nargs: frozenset[str] = frozenset()
    shown_default: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Option:
    """One ``--section.field`` flag: dotted name, field type, default and help text."""

    name: str
    type: Any
    default: Any
    help: str


def options(cli: CommandLine) -> list[Option]:
    """Every config field, section by section in the config's order (imports no torch)."""
    sections = get_type_hints(cli.config)
    out = []
    for section in fields(cli.config):
        cls = sections[section.name]
        hints = get_type_hints(cls)
        out += [Option(f"{section.name}.{f.name}", hints[f.name], _default(f),
                       f.metadata.get("help", "")) for f in fields(cls)]
    return out


def _default(f: dataclasses.Field[Any]) -> Any:
    factory = cast(Callable[[], Any], f.default_factory)  # set when there is no default
    return factory() if f.default is dataclasses.MISSING else f.default


def _parse_value(text: str, t: Any) -> Any:
    """A command-line string as the field's type (YAML syntax: ``null``, ``true``, ``[a, b]``).

    String fields take the text as it is (``--output 2024`` is the folder "2024"); a value
    of the wrong type is a usage error (argparse exits with status 2).
    """
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        value = text
    is_str = t is str or (get_origin(t) in (Union, types.UnionType) and str in get_args(t))
    if is_str and not (value is None and t is not str):
        value = text
    try:
        return coerce(value, t, "value")
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc).removeprefix("value: ")) from None


def _value_parser(t: Any) -> Callable[[str], Any]:
    """``_parse_value`` for field type ``t``, as argparse's ``type=``."""
    return lambda s: _parse_value(s, t)


def add_arguments(parser: argparse.ArgumentParser, cli: CommandLine) -> None:
    """``--config``, then one group per section: a flag per field (``--optim.lr``), its alias
    (``--lr``), and in ``run`` the ``--overwrite`` and ``--no-taxonomy-mask`` switches.

    Every flag defaults to None (= not given), so ``resolve`` lets the YAML file fill it;
    the help shows the field's own default.
    """
    parser.add_argument("--config", metavar="YAML", action="append",
                        help="YAML file setting any option below, nested by section (optim: "
                        "{lr: 0.01}); may be given several times: merged in order, a later "
                        "file's keys win; flags override them, they override the defaults; "
                        "recorded in run.config_files")
    reverse = {v: k for k, v in cli.aliases.items()}
    groups = {name: parser.add_argument_group(f"{name} (--{name}.*)", text)
              for name, text in cli.sections.items()}
    for opt in options(cli):
        group = groups[opt.name.split(".", 1)[0]]
        flags = [f"--{opt.name}"] + ([f"--{reverse[opt.name]}"] if opt.name in reverse else [])
        if opt.name in cli.nargs:
            group.add_argument(*flags, dest=opt.name, nargs="+", default=None,
                               metavar=_metavar(opt, cli), help=_help(opt, cli))
        else:
            group.add_argument(*flags, dest=opt.name, default=None, metavar=_metavar(opt, cli),
                               type=_value_parser(opt.type),
                               help=_help(opt, cli))
    groups["run"].add_argument(
        "--overwrite", dest="run.overwrite", action="store_const", const=True, default=None,
        help="replace the run already in --output (its last.pt, best.pt, metrics, config); "
        "without it such a folder is refused")
    groups["run"].add_argument(
        "--no-taxonomy-mask", dest="run.taxonomy_mask", action="store_const", const=False,
        default=None, help="train on the plain merged dataset (the naive baseline)")
    groups["run"].add_argument(
        "--no-tensorboard", dest="run.tensorboard", action="store_const", const=False,
        default=None, help="write no TensorBoard event files, as --run.tensorboard false does "
        "(default: write them when tensorboard is installed)")


def _help(opt: Option, cli: CommandLine) -> str:
    """The field's help and its default, escaped for argparse's %-formatting."""
    if opt.name in cli.shown_default:
        shown = cli.shown_default[opt.name]
    elif opt.name in cli.nargs:
        shown = " ".join(map(_show, opt.default))
    else:
        shown = _show(opt.default)
    return f"{opt.help} (default: {shown})".replace("%", "%%")


def _show(value: Any) -> str:
    """A default as it would be typed on the command line (YAML syntax)."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(map(_show, value)) + "]"
    return str(value)


def _metavar(opt: Option, cli: CommandLine) -> str:
    if opt.name in cli.metavars:
        return cli.metavars[opt.name]
    t = opt.type
    if get_origin(t) in (Union, types.UnionType):  # X | None: X's metavar
        (t,) = [a for a in get_args(t) if a is not type(None)]
    if get_origin(t) is Literal:
        return "{" + ",".join(get_args(t)) + "}"
    return {int: "N", float: "X", bool: "BOOL"}.get(t, "TEXT")


def training_parser(prog: str, description: str, usage: str,
                    cli: CommandLine) -> argparse.ArgumentParser:
    """A training tool's parser: its description kept as written, no abbreviated flags, and
    every option of ``cli`` (``add_arguments``); imports no torch (fast ``--help``)."""
    parser = argparse.ArgumentParser(prog=prog, description=description, allow_abbrev=False,
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     usage=usage)
    add_arguments(parser, cli)
    return parser


def parse_args(parser: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    """``parser.parse_args(argv)``, but an unknown flag's usage error (exit 2) suggests the
    closest known one (case-insensitive): ``--optim.warmup-steps`` -> ``--optim.warmup_steps``."""
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        known = [s for s in parser._option_string_actions if s.startswith("--")]
        advice = "".join(did_you_mean(a.split("=", 1)[0], known)
                         for a in unknown if a.startswith("--"))
        parser.error(f"unrecognized arguments: {' '.join(unknown)}{advice}")
    return args


def config_files(args: argparse.Namespace) -> list[str]:
    """The ``--config`` files, in order (one file given as a string counts too)."""
    given = getattr(args, "config", None)
    return [str(given)] if isinstance(given, (str, Path)) else [str(f) for f in given or []]


def read_configs(files: list[str]) -> dict[str, Any]:
    """The ``--config`` files merged in order (``merge_trees``: a later file's keys win)."""
    tree: dict[str, Any] = {}
    for name in files:
        loaded = _read_yaml(Path(name)) or {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"{name}: expected a mapping of config sections")
        tree = merge_trees(tree, loaded)
    return tree


def resolve(args: argparse.Namespace, cli: CommandLine) -> Any:
    """Defaults < the config of the checkpoint ``run.resume`` names (``resumed_config``) < YAML
    (``--config``, each file over the ones before) < flags given on the command line. The
    files are recorded in ``run.config_files`` (after a resumed run's own)."""
    files = config_files(args)
    tree = read_configs(files)
    for name, value in vars(args).items():
        if "." in name and value is not None:
            section, key = name.split(".", 1)
            tree.setdefault(section, {})[key] = value
    if files:
        tree.setdefault("run", {})["config_files"] = files
    where = " + ".join(files) or "config"
    resume = tree.get("run", {}).get("resume") if isinstance(tree.get("run"), dict) else None
    if isinstance(resume, str) and resume:
        check_resume_overwrite(resume, tree["run"].get("overwrite"),  # before reading it
                               tree["run"].get("init_checkpoint"))
        from taxdet.detection.engine.checkpoint import resumed_config  # torch: only when resuming
        resumed = resumed_config(resume, cli.config)
        if files:
            tree["run"]["config_files"] = resumed["run"].get("config_files", []) + files
        tree = merge_trees(resumed, tree)
    return cli.config.from_dict(tree, where=where)


def merge_trees(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    """``base`` with the values of ``over`` (nested by section) put over it."""
    out = {k: dict(v) if isinstance(v, dict) else v for k, v in base.items()}
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key].update(value)
        else:
            out[key] = value
    return out


MAX_CONFIG_BYTES = 1 << 20  # a --config file; anything larger is not a training config


def _read_yaml(path: Path) -> Any:
    """A ``--config`` file parsed safely; a clear ``ConfigError`` naming it when unreadable."""
    try:
        if path.exists() and (not path.is_file() or path.stat().st_size > MAX_CONFIG_BYTES):
            raise ConfigError(f"{path}: not a regular file of at most {MAX_CONFIG_BYTES} bytes")
        return yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise InputNotFoundError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config file ({exc})") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: YAML nested too deeply") from None
