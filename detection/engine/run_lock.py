"""One run per folder: an exclusive lock on the run folder for the whole run.

``run_lock(output)`` (a context manager, used by ``tools/train.py`` and
``tools/train_classifier.py`` around the whole run) creates the folder when needed and holds
``fcntl.flock`` on ``<output>/.taxdet-run.lock``, which records the holder's pid, host and start
time. A second start into the same folder is refused with an ``OutputError`` naming the running
process. A lock file left by a process that died (its lock is gone with it) is stale: it is
reported (a warning naming that process) and taken over. The lock file is removed when the run
ends; a start that fails before training (no ``metrics.jsonl`` yet) in a folder that held no
run also removes the run files it wrote, so the folder is as it was.

Under ``torchrun`` only rank 0 (``RANK`` unset or 0) locks: the other ranks are the same run.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import logging
import os
import socket
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from taxdet.core.errors import OutputError
from taxdet.detection.engine.run_folder import RUN_FILES, existing_run_files

LOCK_NAME = ".taxdet-run.lock"

logger = logging.getLogger(__name__)


def _holder(fd: int) -> dict[str, Any]:
    """What the lock file says about its holder ({} when empty or unreadable)."""
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        data = json.loads(os.read(fd, 4096).decode() or "{}")
    except (OSError, ValueError, UnicodeDecodeError):
        return {}
    return data if isinstance(data, dict) else {}


def describe(holder: dict[str, Any]) -> str:
    if not holder:
        return "a process that recorded no pid"
    started = holder.get("started")
    when = time.strftime(" since %Y-%m-%d %H:%M:%S", time.localtime(started)) \
        if isinstance(started, (int, float)) else ""
    return f"pid {holder.get('pid')} on host {holder.get('host')}{when}"


def _open_locked(path: Path) -> int:
    """An fd of ``path`` holding its exclusive lock; ``OutputError`` when another process
    holds it."""
    while True:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            holder = _holder(fd)
            os.close(fd)
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(f"run.output {path.parent}: cannot lock {path} "
                                  f"({exc.strerror})") from None
            raise OutputError(
                f"run.output {path.parent}: another training run is using this folder "
                f"({describe(holder)}; lock file {path}); wait for it to end or choose another "
                "--output") from None
        try:  # the holder before us may have removed the file after we opened it
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            return fd
        os.close(fd)


def acquire(folder: Path) -> int:
    """Lock ``folder`` (created by the caller); report a stale lock; record this process."""
    path = folder / LOCK_NAME
    fd = _open_locked(path)
    stale = _holder(fd)
    if stale:
        logger.warning("run.output %s: a stale lock of %s, which is no longer running (it "
                       "ended without unlocking); taking it over", folder, describe(stale))
    record = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
    os.ftruncate(fd, 0)
    os.pwrite(fd, json.dumps(record).encode(), 0)
    os.fsync(fd)
    return fd


def release(folder: Path, fd: int) -> None:
    (folder / LOCK_NAME).unlink(missing_ok=True)   # while still holding the lock
    os.close(fd)


def _is_main_rank() -> bool:
    return os.environ.get("RANK", "0") in ("", "0")


def check_inputs_survive(folder: Path, inputs: Iterable[str | Path | None],
                         overwrite: bool) -> None:
    """``--overwrite`` deletes the old run's files: refuse when one of them is an input
    (``--config OUT/config.yaml --output OUT --overwrite``)."""
    if not overwrite:
        return
    doomed = {(folder / n).resolve(): n for n in existing_run_files(folder)}
    for src in inputs:
        if src and Path(src).resolve() in doomed:
            raise OutputError(f"run.output {folder}: --overwrite would delete {src}, which this "
                              "run reads; copy it out of the folder first, or choose another "
                              "--output")


@contextlib.contextmanager
def run_lock(output: str | Path, inputs: Iterable[str | Path | None] = (),
             overwrite: bool = False) -> Iterator[None]:
    """Hold the run folder's lock for the ``with`` body (module docstring)."""
    folder = Path(output)
    if not _is_main_rank() or (folder.exists() and not folder.is_dir()):
        yield   # a path that is a file: the run folder check reports it
        return
    check_inputs_survive(folder, inputs, overwrite)
    created = not folder.exists()
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"run.output {folder}: cannot create ({exc.strerror or exc})") from None
    before = set(existing_run_files(folder))
    try:
        fd = acquire(folder)
    except BaseException:
        _remove_if_empty(folder, created)
        raise
    try:
        yield
    except BaseException:
        if not before and not (folder / "metrics.jsonl").exists():
            _undo_start(folder)
        raise
    finally:
        release(folder, fd)
        _remove_if_empty(folder, created)


def _undo_start(folder: Path) -> None:
    """A start that failed before training: remove the run files it wrote."""
    for name in existing_run_files(folder):
        if name in RUN_FILES:
            (folder / name).unlink(missing_ok=True)


def _remove_if_empty(folder: Path, created: bool) -> None:
    if created:
        with contextlib.suppress(OSError):
            folder.rmdir()


def locked_run(cfg: Any, config_files: str | list[str] | None
               ) -> contextlib.AbstractContextManager[None]:
    """``run_lock`` for a resolved training config: its folder, ``--overwrite`` and the files
    it reads that could lie in the folder (``--config``, ``--init-checkpoint``, ``--data``)."""
    files = [config_files] if isinstance(config_files, (str, Path)) else list(config_files or [])
    data = getattr(cfg, "data", None)
    inputs = [*files, cfg.run.init_checkpoint, getattr(data, "super_json", None)]
    return run_lock(cfg.run.output, inputs, bool(cfg.run.overwrite))
