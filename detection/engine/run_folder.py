"""The run folder (``run.output``): refused when it already holds another run, written atomically.

A run folder holds ``RUN_FILES``. Training into a folder that holds any of them is refused
unless the run continues from a checkpoint in that same folder (``--resume``) or
``--overwrite`` is given, which removes the old run's files when training starts. The check
runs before anything is read or written, so a refused or failing start leaves the folder as it
was (except under torchrun without ``--data``: rank 0 starts the folder to write its merge,
``super.json``, for the other ranks). Besides the config, checkpoints and metrics it holds
``split.json`` (the images trained and validated on) and, after a warm start from a checkpoint
of other taxonomies, ``init_mapping.json``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from taxdet.core.errors import ConfigError, OutputError
from taxdet.core.files import check_outputs, remove_stale_temps, write_atomic
from taxdet.datasets import split

SPLIT, INIT_MAPPING = "split.json", "init_mapping.json"
RUN_FILES = ("last.pt", "best.pt", "config.yaml", "metrics.jsonl", "taxonomy_hash.txt",
             "taxonomies.json", "merge_report.json", SPLIT, INIT_MAPPING, "curves.png")
OTHER_FILES = ("super.json", "coverage.json")   # written into the folder, not marking a run


def existing_run_files(folder: Path) -> list[str]:
    return [name for name in RUN_FILES if (folder / name).exists()]


def check_resume_overwrite(resume: str | None, overwrite: bool | None,
                           init_checkpoint: str | None = None) -> None:
    """``ConfigError`` for ``--resume`` with ``--overwrite`` or with ``--init-checkpoint``
    (a resumed run takes its weights from the checkpoint it continues)."""
    if resume and overwrite:
        raise ConfigError("--resume continues a run and --overwrite replaces it: choose one")
    if resume and init_checkpoint:
        raise ConfigError(f"--resume {resume} continues a run with its own weights, so "
                          f"--init-checkpoint {init_checkpoint} would not be used: give one of "
                          "them (a new run from those weights: --init-checkpoint without "
                          "--resume)")


def check_run_folder(output: str | Path, resume: str | None, overwrite: bool,
                     init_checkpoint: str | None = None) -> None:
    """``OutputError`` when ``output`` cannot hold this run (see the module docstring);
    ``ConfigError`` for ``resume`` with ``overwrite`` or ``init_checkpoint``."""
    out = Path(output)
    check_resume_overwrite(resume, overwrite, init_checkpoint)
    if out.exists() and not out.is_dir():
        raise OutputError(f"run.output {out}: is a file, not a folder")
    check_outputs({"run.output": out / RUN_FILES[0]}, [])  # a parent that is a file
    found = existing_run_files(out)
    if not found or overwrite:
        return
    if resume and Path(resume).resolve().parent == out.resolve():
        return
    hint = (f"--resume {out / 'last.pt'} continues it" if "last.pt" in found
            else "it has no last.pt to resume")
    raise OutputError(f"run.output {out}: already holds a run ({', '.join(found)}); {hint}, "
                      "--overwrite replaces it, or choose another --output")


def start_run_folder(out: Path, overwrite: bool) -> None:
    """Create the folder; remove temp files of killed writes, and the old run's files when
    overwriting."""
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"run.output {out}: cannot create ({exc.strerror or exc})") from None
    remove_stale_temps(out, names=(*RUN_FILES, *OTHER_FILES))  # never a user's .x.tmp
    if overwrite:
        for name in existing_run_files(out):
            (out / name).unlink()


def write_run_files(out: Path, config: dict[str, Any], taxonomy_hash: str,
                    taxonomies: dict[str, Any], merge_report: dict[str, Any]) -> None:
    """The resolved config, the taxonomy hash and set, and the merge report (each atomic)."""
    write_atomic(out / "config.yaml", yaml.safe_dump(config, sort_keys=False))
    write_atomic(out / "taxonomy_hash.txt", taxonomy_hash + "\n")
    write_atomic(out / "taxonomies.json", json.dumps(taxonomies, indent=1))
    write_atomic(out / "merge_report.json", json.dumps(merge_report, indent=1))


def write_split(out: Path, train: list[Any], val: list[Any], cfg: split.SplitConfig) -> None:
    """``split.json``: the images the run trains and validates on (``taxdet.datasets.split``)."""
    split.write_split(out / SPLIT, train, val, cfg)


def write_init_mapping(out: Path, record: dict[str, Any]) -> None:
    """``init_mapping.json``: how ``--init-checkpoint``'s classes were matched by name."""
    write_atomic(out / INIT_MAPPING, json.dumps(record, indent=1))
