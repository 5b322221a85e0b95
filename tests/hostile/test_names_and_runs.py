"""Names that cannot become paths (the validator's positioned error, the one helper every path
builder uses) and one run per folder (two processes, a stale lock)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import taxdet.supertax as supertax
from taxdet.core.safe_names import UnsafeNameError, check_name, name_path
from taxdet.detection.engine import run_lock
from tests.paths import REPO
from tests.supertax.yamlfiles import DRIVING, write

BAD_NAMES = {
    "absolute": '"/srv/victim"',
    "parent": '"../outside"',
    "dot-dot": '".."',
    "separator": '"a/b"',
    "backslash": '"a\\\\b"',
    "nul": '"a\\0b"',
    "newline": '"a\\nb"',
    "escape": '"a\\x1bb"',
    "windows drive": '"C:evil"',
}


@pytest.mark.parametrize("where", ["taxonomy name", "label name", "class name"])
@pytest.mark.parametrize("kind", list(BAD_NAMES))
def test_the_validator_refuses_names_that_could_be_paths(tmp_path, run_tool, snapshot, kind,
                                                         where):
    bad = BAD_NAMES[kind]
    if where == "class name":
        text = DRIVING.replace("- name: truck", f"- name: {bad}")
        write(tmp_path, "driving.yaml", text)
        line = next(i for i, t in enumerate(text.splitlines(), 1) if bad in t)
        path = tmp_path / "driving.yaml"
    else:
        write(tmp_path, "driving.yaml", DRIVING)
        name, label = (bad, "Car") if where == "taxonomy name" else ("cust", bad)
        path = write(tmp_path, "cust.yaml", f"kind: taxonomy\nname: {name}\nsuper_taxonomy: "
                     f"driving\nlabels:\n  - name: {label}\n    maps_to: car\n")
        line = 2 if where == "taxonomy name" else 5
    snap = snapshot(tmp_path)
    code, out, err = run_tool("validate_taxonomies", tmp_path)
    snap.unchanged()
    assert code == 1, (out, err)
    errors = [x for x in out.splitlines() if ": error: " in x and "file or folder name" in x]
    assert errors and errors[0].startswith(f"{path}:{line}:"), out
    assert "\0" not in out and "\x1b" not in out      # shown escaped (repr)
    with pytest.raises(supertax.InputError):
        supertax.load([tmp_path])


@pytest.mark.parametrize("name", ["/srv/victim", "../up", "a/b", "a\\b", ".", "..", "",
                                  "a\0b", "a\nb", "a\x7fb", "C:x"])
def test_the_name_helper_refuses_path_like_names(tmp_path, name):
    with pytest.raises(UnsafeNameError, match="cannot name a file or folder") as exc:
        name_path(tmp_path, name, "taxonomy name")
    assert "\0" not in str(exc.value) and "\n" not in str(exc.value)


@pytest.mark.parametrize("name", ["customer_a", "Human", "traffic light", "Ärger", "a.b", "..a"])
def test_the_name_helper_accepts_ordinary_names(name):
    assert check_name(name) == name


def test_demo_generators_refuse_an_unsafe_name_before_writing(tmp_path):
    """A taxonomy object that bypassed the validator still cannot write outside ``out``."""
    from taxdet.datasets.demo import DemoConfig, generate_demo
    from taxdet.datasets.demo_classification import generate_crops
    from taxdet.datasets.warehouse_demo import generate_warehouse
    from tests.paths import DRIVING as SHIPPED
    taxset = supertax.load([SHIPPED])
    victim = tmp_path / "victim"
    taxset.taxonomies[1].name = str(victim)
    cfg = DemoConfig(images_per_customer=1, test_images=1, image_size=64)
    for generate in (generate_demo, generate_warehouse):
        with pytest.raises(UnsafeNameError, match="taxonomy name"):
            generate(tmp_path / "out", taxset, cfg)
    with pytest.raises(UnsafeNameError):
        generate_crops(tmp_path / "out", taxset, cfg)
    assert not victim.exists() and not (tmp_path / "out").exists()


# -- one run per folder -----------------------------------------------------------------------
HOLD = """
import sys, time
from pathlib import Path
from taxdet.detection.engine.run_lock import run_lock
with run_lock(Path(sys.argv[1])):
    print("locked", flush=True)
    time.sleep(120)
"""


def _holder(folder: Path) -> subprocess.Popen:
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen([sys.executable, "-c", HOLD, str(folder)], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc


def test_a_second_run_into_a_locked_folder_is_refused_naming_the_first(tmp_path, run_tool):
    out = tmp_path / "run"
    proc = _holder(out)
    try:
        code, _, err = run_tool("train", "--taxonomies", "taxonomies/driving", "--output", out,
                                "--steps", "1")
        assert code == 1 and "another training run is using this folder" in err, err
        assert f"pid {proc.pid} on host " in err
        code, _, err = run_tool("train_classifier", "--taxonomies", "taxonomies/driving",
                                "--output", out, "--steps", "1")
        assert code == 1 and f"pid {proc.pid}" in err, err
    finally:
        proc.terminate()
        proc.wait()
    # the refused starts wrote nothing (the killed holder leaves its lock file: stale)
    assert [p.name for p in out.iterdir()] == [run_lock.LOCK_NAME]


def test_a_stale_lock_of_a_killed_run_is_reported_and_taken_over(tmp_path, caplog):
    out = tmp_path / "run"
    proc = _holder(out)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    held = json.loads((out / run_lock.LOCK_NAME).read_text())
    assert held["pid"] == proc.pid
    with caplog.at_level("WARNING"), run_lock.run_lock(out):
        recorded = json.loads((out / run_lock.LOCK_NAME).read_text())
        assert recorded["pid"] == os.getpid()
    assert f"a stale lock of pid {proc.pid} on host" in caplog.text
    assert not (out / run_lock.LOCK_NAME).exists()   # removed when the run ends


def test_two_locks_in_one_process_conflict_and_release(tmp_path):
    with run_lock.run_lock(tmp_path / "run"):
        with pytest.raises(run_lock.OutputError, match=f"pid {os.getpid()}"):
            with run_lock.run_lock(tmp_path / "run"):
                pass
    with run_lock.run_lock(tmp_path / "run"):  # released: a new run may start
        pass
    assert not (tmp_path / "run").exists()  # created for the run and empty again: removed


def test_a_failing_start_leaves_the_folder_as_it_was(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(RuntimeError):
        with run_lock.run_lock(out):
            (out / "config.yaml").write_text("resolved")
            (out / "taxonomy_hash.txt").write_text("abc")
            raise RuntimeError("the data could not be read")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]


def test_overwrite_never_deletes_the_config_it_reads(tmp_path, run_tool):
    out = tmp_path / "run"
    out.mkdir()
    (out / "config.yaml").write_text("optim: {lr: 0.01}\n")
    (out / "last.pt").write_bytes(b"an earlier run")
    code, _, err = run_tool("train", "--config", out / "config.yaml", "--output", out,
                            "--overwrite", "--steps", "1")
    assert code == 1 and f"--overwrite would delete {out / 'config.yaml'}" in err, err
    assert (out / "config.yaml").read_text() == "optim: {lr: 0.01}\n"


def test_lock_wait_is_not_needed_after_release(tmp_path):
    start = time.perf_counter()
    for _ in range(3):
        with run_lock.run_lock(tmp_path / "r"):
            pass
    assert time.perf_counter() - start < 5
