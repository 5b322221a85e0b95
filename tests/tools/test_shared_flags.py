"""The shared flags of ``taxdet.tools.cli_flags``: one ``--device`` default (auto), one
``--workers`` default, ``-v/-q`` on every tool and the log level they select; the ``taxdet``
console command's ``--help`` for every verb."""

from __future__ import annotations

import argparse
import importlib
import logging
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from taxdet.tools import cli_flags
from taxdet.tools.cli import VERBS
from tests.paths import DRIVING, REPO

TOOLS = sorted({module for module, _ in VERBS.values()})
HEAVY = ("torch", "effdet", "timm", "cv2", "albumentations")
TAXDET = Path(sys.executable).parent / "taxdet"  # the installed console command


def actions(tool: str) -> dict[str, argparse.Action]:
    """Option string -> action of ``tools/<tool>.py``'s parser."""
    parser = importlib.import_module(f"taxdet.tools.{tool}").build_parser()
    return {s: a for a in parser._actions for s in a.option_strings}


@pytest.mark.parametrize("tool", TOOLS)
def test_device_defaults_to_auto_and_workers_agree(tool):
    flags = actions(tool)
    if "--device" in flags and "." not in flags["--device"].dest:  # not a training config field
        assert flags["--device"].default == "auto"
    if "--workers" in flags and "." not in flags["--workers"].dest:
        assert flags["--workers"].default == cli_flags.DEFAULT_WORKERS


@pytest.mark.parametrize("tool", TOOLS)
def test_every_tool_has_verbosity_flags(tool):
    flags = actions(tool)
    assert {"-v", "--verbose", "-q", "--quiet"} <= set(flags)


def test_the_tools_with_device_and_workers():
    """The flags are where the issue found them drifting (not silently dropped)."""
    for tool in ("evaluate", "predict", "lint_labels", "evaluate_classifier"):
        flags = actions(tool)
        assert flags["--device"].default == "auto" and flags["--workers"].default == 2, tool


def test_backend_flags_name_the_library_backends():
    """predict.py defaults to torch, serve.py to ONNX Runtime when installed; one name list."""
    from taxdet.detection.export.trunk_backends import BACKENDS
    assert cli_flags.BACKENDS == BACKENDS
    assert actions("predict")["--backend"].default == "torch"
    assert actions("serve")["--backend"].choices == BACKENDS
    for tool in ("predict", "serve"):
        assert "--threads" in actions(tool)


def test_device_values_are_checked():
    parser = argparse.ArgumentParser()
    cli_flags.add_device(parser)
    for value in ("auto", "cpu", "cuda", "cuda:1"):
        assert parser.parse_args(["--device", value]).device == value
    with pytest.raises(SystemExit):
        parser.parse_args(["--device", "gpu"])


def test_building_every_parser_imports_no_torch():
    code = f"""
        import importlib, sys
        for tool in {TOOLS!r}:
            importlib.import_module("taxdet.tools." + tool).build_parser().format_help()
        print([m for m in {HEAVY!r} if m in sys.modules])
    """
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=REPO,
                          capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "[]"


# -- -v / -q ------------------------------------------------------------------------------------
@pytest.fixture
def chatty_validate(monkeypatch):
    """``tools/validate_taxonomies.py`` whose library call logs one INFO and one DEBUG message
    (through ``validate_files``, which the tool looks up by name when it runs)."""
    from taxdet.tools import validate_taxonomies
    real = validate_taxonomies.validate_files

    def chatty(paths):
        log = logging.getLogger("taxdet.supertax.validate")
        log.info("an info message")
        log.debug("a debug message")
        return real(paths)
    monkeypatch.setattr(validate_taxonomies, "validate_files", chatty)
    return validate_taxonomies


@pytest.mark.parametrize("flag, info, debug", [(None, True, False), ("-q", False, False),
                                               ("-v", True, True)])
def test_quiet_and_verbose_select_the_level(chatty_validate, capsys, flag, info, debug):
    argv = [str(DRIVING), "--no-counts", *([flag] if flag else [])]
    assert chatty_validate.main(argv) == 0
    err = capsys.readouterr().err
    assert ("an info message" in err) == info
    assert ("a debug message" in err) == debug


# -- the console command ------------------------------------------------------------------------
def test_taxdet_help_lists_the_verbs():
    out = subprocess.run([str(TAXDET), "--help"], capture_output=True, text=True,
                         check=True).stdout
    for verb in VERBS:
        assert f"  {verb} " in out


@pytest.mark.parametrize("verb", sorted(VERBS))
def test_taxdet_verb_help(verb):
    proc = subprocess.run([str(TAXDET), verb, "--help"], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "usage:" in proc.stdout and "--verbose" in proc.stdout
