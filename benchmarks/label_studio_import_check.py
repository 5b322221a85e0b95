"""``tools/predict.py --format label-studio`` against a real Label Studio: its tasks file and
labeling config imported as they are, then read back through the API.

Run by ``benchmarks.label_studio_check`` (``make label-studio-check``) in its Label Studio,
with its checkpoint, images and score threshold, for one customer:

1. ``predict.py --customer C --format label-studio --url-prefix /data/local-files/?d=images/``
   on the staged images (``work/files/images``): ``file_name`` is relative to ``--images``, so
   the prefix adds the folder's path under ``LOCAL_FILES_DOCUMENT_ROOT`` (``work/files``).
2. A project created with the written ``OUT.label_config.xml``, and a local-files storage of
   ``work/files/images`` (not synced): Label Studio serves ``/data/local-files/?d=PATH`` only
   below a project's local storage.
3. The tasks file uploaded as it is (``POST /api/projects/ID/import``, multipart), Label Studio
   running with prediction validation on, so predictions its config does not accept are
   refused (its default only logs them).
4. Read back: ``GET /api/tasks/?project=ID``, ``GET /api/predictions/?project=ID`` and each
   task's image URL.
5. Checks: as many tasks as the file, paired by ``data.file_name`` with equal ``data``; as many
   predictions per task, each with the file's ``model_version`` and score; the same regions
   (paired by id: type, names, label, image size, x / y / width / height in percent and score
   within ``TOL``); every task's image served as the file on disk.
"""

from __future__ import annotations

import json
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.label_studio_check import PY, LabelStudio, log, run
from taxdet.detection.prediction.prelabel_files import config_path

TOL = 1e-6
URL_PREFIX = "/data/local-files/?d=images/"  # the staged images' folder below the files root
BOX_KEYS = ("x", "y", "width", "height")
SAME_KEYS = ("type", "from_name", "to_name", "original_width", "original_height")


@dataclass
class ImportOutcome:
    """Counts (tasks, predictions, regions) in the file and read back, the largest score and
    box differences, images served, and what did not match."""

    customer: str
    project: int = 0
    version: str = ""
    in_file: tuple[int, int, int] = (0, 0, 0)
    read_back: tuple[int, int, int] = (0, 0, 0)
    score_diff: float = 0.0
    box_diff: float = 0.0
    served: int = 0
    problems: list[str] = field(default_factory=list)


def counts(tasks: list[dict], predictions: list[dict]) -> tuple[int, int, int]:
    return len(tasks), len(predictions), sum(len(p["result"]) for p in predictions)


def write_tasks(ckpt: Path, work: Path, customer: str, threshold: float) -> Path:
    """``predict.py --format label-studio`` for ``customer``; the tasks file's path."""
    out = work / f"ls_tasks_{customer}.json"
    run(PY, "tools/predict.py", "--checkpoint", ckpt, "--images", work / "files" / "images",
        "--customer", customer, "--score-threshold", threshold, "--format", "label-studio",
        "--url-prefix", URL_PREFIX, "--out", out, "--device", "cpu", "--workers", 0, "-q")
    return out


def compare_region(want: dict, got: dict | None, out: ImportOutcome, where: str) -> None:
    if got is None:
        out.problems.append(f"{where}: region missing")
        return
    wv, gv = want["value"], got.get("value", {})
    same = all(want[k] == got.get(k) for k in SAME_KEYS)
    if not same or wv["rectanglelabels"] != gv.get("rectanglelabels"):
        out.problems.append(f"{where}: {got} differs from the file's {want}")
        return
    box = max(abs(wv[k] - gv.get(k, float("inf"))) for k in BOX_KEYS)
    score = abs(want["score"] - got.get("score", float("inf")))
    out.box_diff, out.score_diff = max(out.box_diff, box), max(out.score_diff, score)
    if box > TOL or score > TOL:
        out.problems.append(f"{where}: box off by {box:.2e} %, score by {score:.2e}")


def compare_prediction(want: dict, got: dict, out: ImportOutcome, where: str) -> None:
    if got["model_version"] != want["model_version"]:
        out.problems.append(f"{where}: model_version {got['model_version']!r}, file "
                            f"{want['model_version']!r}")
    score = abs(want["score"] - (got["score"] if got["score"] is not None else float("inf")))
    out.score_diff = max(out.score_diff, score)
    if score > TOL:
        out.problems.append(f"{where}: score {got['score']}, file {want['score']}")
    stored = {r.get("id"): r for r in got["result"]}
    if len(stored) != len(got["result"]) or set(stored) != {r["id"] for r in want["result"]}:
        out.problems.append(f"{where}: region ids {sorted(map(str, stored))}, file "
                            f"{sorted(r['id'] for r in want['result'])}")
    for reg in want["result"]:
        compare_region(reg, stored.get(reg["id"]), out, f"{where} region {reg['id']}")


def compare(file_tasks: list[dict], tasks: list[dict], predictions: list[dict],
            out: ImportOutcome) -> None:
    """The file's tasks against Label Studio's, paired by ``data.file_name``."""
    per_task = defaultdict(list)
    for p in sorted(predictions, key=lambda p: p["id"]):
        per_task[p["task"]].append(p)
    stored = {t["data"].get("file_name"): t for t in tasks}
    for want in file_tasks:
        name = want["data"]["file_name"]
        got = stored.get(name)
        if got is None or got["data"] != want["data"]:
            out.problems.append(f"{name}: task {'missing' if got is None else got['data']}")
            continue
        preds = per_task.get(got["id"], [])
        if len(preds) != len(want["predictions"]):
            out.problems.append(f"task {got['id']} ({name}): {len(preds)} predictions, file "
                                f"{len(want['predictions'])}")
            continue
        for w, g in zip(want["predictions"], preds):
            compare_prediction(w, g, out, f"task {got['id']} ({name}) prediction {g['id']}")


def check_images(ls: LabelStudio, tasks: list[dict], work: Path, out: ImportOutcome) -> None:
    """Each task's image URL, fetched from Label Studio, is the staged file."""
    for t in tasks:
        body, disk = ls.fetch(t["data"]["image"]), work / "files" / "images" / t["data"].get(
            "file_name", "")
        if body is not None and disk.is_file() and body == disk.read_bytes():
            out.served += 1
        else:
            out.problems.append(f"task {t['id']}: {t['data']['image']} not served as the file")


def import_check(ls: LabelStudio, ckpt: Path, work: Path, customer: str,
                 threshold: float) -> ImportOutcome:
    """Write, import and read back ``customer``'s pre-labels (module doc)."""
    out = ImportOutcome(customer)
    tasks_file = write_tasks(ckpt, work, customer, threshold)
    file_tasks = json.loads(tasks_file.read_text())
    file_preds = [p for t in file_tasks for p in t["predictions"]]
    out.in_file = counts(file_tasks, file_preds)
    out.version = file_preds[0]["model_version"] if file_preds else "(none)"
    out.project = ls.project(f"taxdet import {customer}", config_path(tasks_file).read_text())
    ls.local_storage(out.project, work / "files" / "images")
    with open(tasks_file, "rb") as f:
        ids = ls.import_body(out.project, files={"file": (tasks_file.name, f,
                                                          "application/json")})
    log(f"project {out.project} ({customer}): imported {tasks_file.name} as it is, "
        f"{len(ids)} tasks")
    tasks, preds = ls.tasks(out.project), ls.predictions(out.project)
    out.read_back = counts(tasks, preds)
    if out.read_back != out.in_file:
        out.problems.append(f"read back {out.read_back} (tasks, predictions, regions), file "
                            f"{out.in_file}")
    compare(file_tasks, tasks, preds, out)
    check_images(ls, tasks, work, out)
    return out


def import_report(o: ImportOutcome) -> bool:
    print(f"\nLabel Studio import check: predict.py --format label-studio, customer {o.customer},"
          f" model_version {o.version}, tolerance {TOL:g}")
    print(f"{'':<11} {'tasks':>5} {'predictions':>11} {'regions':>7}")
    for what, (t, p, r) in (("file", o.in_file), (f"project {o.project}", o.read_back)):
        print(f"{what:<11} {t:>5} {p:>11} {r:>7}")
    print(f"max |dscore| {o.score_diff:.2e}, max |dbox| {o.box_diff:.2e} % of the image, "
          f"images served {o.served}/{o.read_back[0]}")
    for p in o.problems[:20]:
        print(f"  {p}")
    ok = not o.problems and o.in_file[2] > 0
    print("PASS" if ok else "FAIL")
    return ok
