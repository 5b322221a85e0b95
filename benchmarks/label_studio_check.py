"""The serving check against a real Label Studio: install it, connect ``tools/serve.py`` as a
project's ML backend, and compare the predictions Label Studio stores with ``predict.py``'s.

    python -m benchmarks.label_studio_check [--checkpoint CKPT] [--images DIR]
        [--backend onnxruntime|torch] [--ls-venv .ls-venv] [--keep]

1. Label Studio from PyPI in its own venv (``--ls-venv``, created with ``pip install
   label-studio`` when missing), started on 127.0.0.1 with sqlite in a temporary data dir,
   telemetry off, a fresh user whose legacy API token (``--user-token``,
   ``--enable-legacy-api-token``) the script uses; local files served from the work dir.
2. A checkpoint: ``--checkpoint``, or a tiny demo one (``make_demo_data.py`` + a 2-step
   ``train.py``) whose heads' last convs are scaled up: a 2-step model scores every anchor
   ~0.0102, so every detection would be a tie and NMS order would hang on rounding.
3. The score threshold: unless ``--score-threshold``, the score of the 50th best detection of
   the full model (``predict.py`` without ``--customer``) over the images, so that no image
   reaches the full model's 100-detection cap (docs/serving.md: there the service keeps more).
4. ``tools/serve.py`` on 127.0.0.1 with ``--images-root`` the local-files root. Per customer (two
   of the service's): a project whose labeling config has that customer's RectangleLabels, the
   images imported as ``/data/local-files/?d=...`` tasks, the service connected with ``POST
   /api/ml``, predictions retrieved with the data manager action
   ``retrieve_tasks_predictions`` and read back with ``GET /api/predictions``.
5. Checks: every task has one prediction; its regions are ``predict.py --customer``'s for that
   image (same labels, boxes within 1 px, scores within 1e-3; a detection within 1e-3 of the
   threshold may be on one side only); the labels are the project's customer's.
6. ``predict.py --format label-studio`` for the last of the two customers, same checkpoint,
   images and threshold: its tasks file and labeling config imported as they are, read back
   (``benchmarks.label_studio_import_check``).

Prints a report; exit 0 when everything matches, 1 otherwise. Talks to 127.0.0.1 only (and to
PyPI when installing Label Studio).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from taxdet.detection.prediction.ls_format import default_config, labeling_config_xml

REPO = Path(__file__).resolve().parents[1]
PY = sys.executable
USER, PASSWORD = "check@example.com", "serve-check-password"
BOX_TOL, SCORE_TOL, FULL_RANK = 1.0, 1e-3, 50
# telemetry off, sqlite; the service is on 127.0.0.1: Label Studio refuses loopback ML backends
# (ML_BLOCK_LOCAL_IP) and, when it creates the backend's /webhook, any reserved address
# (USE_DEFAULT_BANNED_SUBNETS); this throw-away instance listens on 127.0.0.1 only
QUIET_LS = {"SENTRY_DSN": "", "FRONTEND_SENTRY_DSN": "", "COLLECT_ANALYTICS": "false",
            "LATEST_VERSION_CHECK": "false", "FEATURE_FLAGS_OFFLINE": "true",
            "ML_BLOCK_LOCAL_IP": "false", "USE_DEFAULT_BANNED_SUBNETS": "false",
            "DJANGO_DB": "sqlite", "LOG_LEVEL": "WARNING"}
# imported predictions validated against the labeling config and refused when invalid (by
# default Label Studio 1.23 only logs the errors and stores them anyway)
STRICT_IMPORT = {"fflag_feat_utc_210_prediction_validation_15082025": "true"}


def log(msg: str) -> None:
    print(f"[ls-check] {msg}", flush=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(*argv: object, env: dict | None = None) -> None:
    """Run a command; its output goes to ours; a failure ends the check."""
    subprocess.run([str(a) for a in argv], check=True, cwd=REPO, env=env)


# -- Label Studio and the service as processes --------------------------------------------------
def ensure_label_studio(venv: Path) -> Path:
    exe = venv / "bin" / "label-studio"
    if not exe.exists():
        log(f"installing Label Studio from PyPI into {venv} (a few minutes)")
        run("python3", "-m", "venv", venv)
        run(venv / "bin" / "pip", "install", "--quiet", "label-studio")
    return exe


def wait_up(url: str, proc: subprocess.Popen, what: str, timeout: float) -> None:
    """Poll ``url`` until it answers 200; fail if ``proc`` exits or ``timeout`` passes."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc.poll() is not None:
            raise SystemExit(f"{what} exited with code {proc.returncode} (see its log)")
        try:
            if httpx.get(url, timeout=2, trust_env=False).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"{what} did not answer {url} within {timeout:g} s")


def start_label_studio(exe: Path, work: Path, port: int, token: str) -> subprocess.Popen:
    env = {**os.environ, **QUIET_LS, **STRICT_IMPORT, "LOCAL_FILES_SERVING_ENABLED": "true",
           "LOCAL_FILES_DOCUMENT_ROOT": str(work / "files"), "LABEL_STUDIO_BASE_DATA_DIR":
           str(work / "ls-data")}
    argv = [exe, "start", "--no-browser", "--data-dir", work / "ls-data", "--internal-host",
            "127.0.0.1", "--port", port, "--username", USER, "--password", PASSWORD,
            "--user-token", token, "--enable-legacy-api-token", "--log-level", "WARNING"]
    out = open(work / "label-studio.log", "wb")
    return subprocess.Popen([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT,
                            env=env, cwd=work)


def start_service(args, ckpt: Path, work: Path, port: int, threshold: float
                  ) -> subprocess.Popen:
    argv = [PY, REPO / "tools" / "serve.py", "--checkpoint", ckpt, "--port", port,
            "--images-root", work / "files", "--score-threshold", threshold,
            "--backend", args.backend, "--device", "cpu"]
    out = open(work / "serve.log", "wb")
    return subprocess.Popen([str(a) for a in argv], stdout=out, stderr=subprocess.STDOUT,
                            cwd=REPO)


def stop(proc: subprocess.Popen | None) -> None:
    if proc is not None and proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- the checkpoint, the images, predict.py -----------------------------------------------------
def demo_checkpoint(work: Path, steps: int) -> Path:
    """Demo data and taxonomies under ``work``, a ``steps``-step run, its heads spread out."""
    shutil.copytree(REPO / "taxonomies" / "driving", work / "taxonomies" / "driving")
    run(PY, "tools/make_demo_data.py", work / "data" / "demo", "--images-per-customer", 16,
        "--test-images", 6, "-q")
    run(PY, "tools/train.py", "--config", "benchmarks/recipes/demo.yaml", "--taxonomies",
        work / "taxonomies" / "driving", "--output", work / "run", "--steps", steps,
        "--batch-size", 4, "--val-every", steps, "--workers", 0, "--device", "cpu", "-q")
    return spread_heads(work / "run" / "last.pt", work / "demo.pt")


def demo_images(work: Path) -> Path:
    """The demo's 6 test images (made with the demo data, or now)."""
    folder = work / "data" / "demo" / "test" / "images"
    if not folder.is_dir():
        run(PY, "tools/make_demo_data.py", work / "data" / "demo", "--images-per-customer", 1,
            "--test-images", 6, "-q")
    return folder


def spread_heads(src: Path, out: Path) -> Path:
    """``src`` with its EMA heads' last convs scaled up, saved with a fresh digest: after 2
    steps logits spread by ~0.006 and box codes by ~0.01; x300 and x20 make that ~1 and ~0.2,
    like a trained model's."""
    from taxdet.detection.engine.weights_file import FORMAT_KEY, load, save_atomic
    state = load(src)  # weights_only, digest checked and removed
    state.pop(FORMAT_KEY, None)  # save_atomic writes it (and a new digest) anew
    for key, factor in (("class_net", 300.0), ("box_net", 20.0)):
        name = f"module.{key}.predict.conv_pw.weight"
        state["ema"][name] = state["ema"][name] * factor
    save_atomic(state, out)
    return out


def stage_images(src: Path, work: Path) -> list[str]:
    """Copy the images to ``work/files/images``; their ``/data/local-files`` paths."""
    dest = work / "files" / "images"
    dest.mkdir(parents=True)
    names = sorted(p.name for p in src.iterdir()
                   if p.suffix.lower() in (".jpg", ".jpeg", ".png"))
    for name in names:
        shutil.copy2(src / name, dest / name)
    if not names:
        raise SystemExit(f"no .jpg/.png image in {src}")
    return [f"images/{n}" for n in names]


def predict_py(ckpt: Path, work: Path, threshold: float, customer: str | None) -> dict:
    out = work / f"predict_{customer or 'full'}.json"
    extra = ["--customer", customer] if customer else []
    run(PY, "tools/predict.py", "--checkpoint", ckpt, "--images", work / "files" / "images",
        "--score-threshold", threshold, "--out", out, "--device", "cpu", "--workers", 0, "-q",
        *extra)
    return json.loads(out.read_text())


def coco_rows(coco: dict) -> dict[str, list]:
    """file name -> [(label, [x, y, w, h], score)] (boxes of at least 1 px each way)."""
    names = {c["id"]: c["name"] for c in coco["categories"]}
    files = {i["id"]: Path(i["file_name"]).name for i in coco["images"]}
    out: dict[str, list] = {f: [] for f in files.values()}
    for a in coco["annotations"]:
        if a["bbox"][2] >= 1 and a["bbox"][3] >= 1:
            out[files[a["image_id"]]].append((names[a["category_id"]], a["bbox"], a["score"]))
    return out


def auto_threshold(full: dict) -> float:
    """The ``FULL_RANK``-th best score of the full model over the images (module doc, 3)."""
    per_image = defaultdict(list)
    for a in full["annotations"]:
        per_image[a["image_id"]].append(a["score"])
    ranked = [sorted(s, reverse=True)[FULL_RANK - 1] for s in per_image.values()
              if len(s) >= FULL_RANK]
    return round(max(ranked, default=0.05) + 5e-4, 4)


# -- Label Studio's API -------------------------------------------------------------------------
class LabelStudio:
    """The calls the check makes, with the legacy token."""

    def __init__(self, url: str, token: str):
        self.http = httpx.Client(base_url=url, headers={"Authorization": f"Token {token}"},
                                 timeout=300, trust_env=False)

    def call(self, method: str, path: str, **kw):
        r = self.http.request(method, path, **kw)
        if r.status_code >= 400:
            raise SystemExit(f"Label Studio {method} {path}: {r.status_code} {r.text[:500]}")
        return r.json() if r.content else None

    def project(self, title: str, config: str) -> int:
        """A project with the labeling ``config`` (XML); its id."""
        return self.call("POST", "/api/projects", json={"title": title,
                                                        "label_config": config})["id"]

    def import_tasks(self, pid: int, paths: list[str]) -> list[int]:
        tasks = [{"data": {"image": f"/data/local-files/?d={p}"}} for p in paths]
        return self.import_body(pid, json=tasks)

    def import_body(self, pid: int, **body) -> list[int]:
        """``POST /api/projects/ID/import`` (``json=`` tasks or ``files=`` an upload)."""
        return self.call("POST", f"/api/projects/{pid}/import?return_task_ids=true",
                         **body)["task_ids"]

    def local_storage(self, pid: int, folder: Path) -> dict:
        """A local-files source storage of ``folder`` (not synced): Label Studio serves
        ``/data/local-files/?d=...`` only under a project's local storage."""
        return self.call("POST", "/api/storages/localfiles/", json={
            "project": pid, "path": str(folder), "title": "images", "use_blob_urls": False})

    def tasks(self, pid: int) -> list[dict]:
        return self.call("GET", "/api/tasks/", params={"project": pid,
                                                       "page_size": 10000})["tasks"]

    def fetch(self, url: str) -> bytes | None:
        """The body of a GET of ``url`` (relative to Label Studio), None unless 200."""
        r = self.http.get(url)
        return r.content if r.status_code == 200 else None

    def connect(self, pid: int, url: str) -> dict:
        return self.call("POST", "/api/ml", json={"url": url, "project": pid, "title": "taxdet",
                                                  "is_interactive": False,
                                                  "auth_method": "NONE"})

    def retrieve(self, pid: int) -> dict:
        return self.call("POST", f"/api/dm/actions?id=retrieve_tasks_predictions&project={pid}",
                         json={"selectedItems": {"all": True, "excluded": []}})

    def predictions(self, pid: int) -> list[dict]:
        return self.call("GET", "/api/predictions/", params={"project": pid})

    def task_image(self, tid: int) -> str:
        return self.call("GET", f"/api/tasks/{tid}/")["data"]["image"]


# -- comparison ---------------------------------------------------------------------------------
@dataclass
class Outcome:
    customer: str
    project: int
    tasks: int = 0
    regions: int = 0
    matched: int = 0
    borderline: int = 0
    box_diff: float = 0.0
    score_diff: float = 0.0
    problems: list[str] = field(default_factory=list)


def region_rows(prediction: dict) -> list:
    rows = []
    for reg in prediction["result"]:
        v, w, h = reg["value"], reg["original_width"], reg["original_height"]
        box = [v["x"] * w / 100, v["y"] * h / 100, v["width"] * w / 100, v["height"] * h / 100]
        rows.append((v["rectanglelabels"][0], box, reg["score"]))
    return rows


def match_rows(got: list, want: list, threshold: float, out: Outcome, where: str) -> None:
    """Pair each of ``want`` with an unused row of ``got`` with its label, box and score;
    unpaired rows are problems unless their score is within ``SCORE_TOL`` of ``threshold``."""
    free = list(got)
    for label, box, score in sorted(want, key=lambda r: -r[2]):
        fits = [g for g in free if g[0] == label and abs(g[2] - score) <= SCORE_TOL
                and max(abs(a - b) for a, b in zip(g[1], box)) <= BOX_TOL]
        if fits:
            best = min(fits, key=lambda g: max(abs(a - b) for a, b in zip(g[1], box)))
            free.remove(best)
            out.matched += 1
            out.box_diff = max(out.box_diff, max(abs(a - b) for a, b in zip(best[1], box)))
            out.score_diff = max(out.score_diff, abs(best[2] - score))
        elif score - threshold <= SCORE_TOL:
            out.borderline += 1
        else:
            out.problems.append(f"{where}: predict.py's {label} {box} {score:.4f} not served")
    for label, box, score in free:
        if score - threshold <= SCORE_TOL:
            out.borderline += 1
        else:
            out.problems.append(f"{where}: served {label} {box} {score:.4f} not in predict.py's")


def check_project(ls: LabelStudio, out: Outcome, tids: list[int], want: dict[str, list],
                  labels: set[str], threshold: float) -> None:
    per_task = defaultdict(list)
    for p in ls.predictions(out.project):
        per_task[p["task"]].append(p)
    out.tasks = len(tids)
    for tid in tids:
        preds, name = per_task.get(tid, []), Path(ls.task_image(tid)).name
        if len(preds) != 1:
            out.problems.append(f"task {tid} ({name}): {len(preds)} predictions, expected 1")
            continue
        rows = region_rows(preds[0])
        out.regions += len(rows)
        strangers = {r[0] for r in rows} - labels
        if strangers:
            out.problems.append(f"task {tid}: labels {sorted(strangers)} are not "
                                f"{out.customer}'s")
        match_rows(rows, want.get(name, []), threshold, out, f"task {tid} ({name})")


# -- the run ------------------------------------------------------------------------------------
def service_customers(url: str) -> list[str]:
    return httpx.get(f"{url}/health", timeout=10, trust_env=False).json()["customers"]


def customer_project(ls: LabelStudio, customer: str, paths: list[str], serve_url: str,
                     want: dict, threshold: float) -> Outcome:
    """One project for ``customer``: create, import, connect, retrieve, compare."""
    labels = [c["name"] for c in want["categories"]]
    out = Outcome(customer, ls.project(f"taxdet check {customer}",
                                       labeling_config_xml(default_config(labels))))
    tids = ls.import_tasks(out.project, paths)
    backend = ls.connect(out.project, serve_url)
    log(f"project {out.project} ({customer}: {', '.join(labels)}): {len(tids)} tasks, ML "
        f"backend {backend['id']} state {backend.get('state')} version "
        f"{backend.get('model_version')}")
    done = ls.retrieve(out.project)
    log(f"project {out.project}: retrieve_tasks_predictions -> {done}")
    check_project(ls, out, tids, coco_rows(want), set(labels), threshold)
    return out


def report(outcomes: list[Outcome], threshold: float, backend: str) -> bool:
    print(f"\nLabel Studio check: backend {backend}, score threshold {threshold:g}, "
          f"tolerances box {BOX_TOL:g} px, score {SCORE_TOL:g}")
    print(f"{'project':>7}  {'customer':<12} {'tasks':>5} {'regions':>7} {'matched':>7} "
          f"{'border':>6} {'max |dbox| px':>13} {'max |dscore|':>12}  result")
    for o in outcomes:
        print(f"{o.project:>7}  {o.customer:<12} {o.tasks:>5} {o.regions:>7} {o.matched:>7} "
              f"{o.borderline:>6} {o.box_diff:>13.4f} {o.score_diff:>12.2e}  "
              f"{'ok' if not o.problems else 'MISMATCH'}")
        for p in o.problems[:20]:
            print(f"         {p}")
    ok = all(not o.problems and o.matched > 0 for o in outcomes)
    print("PASS" if ok else "FAIL")
    return ok


def check(args, work: Path) -> bool:
    ls_exe = ensure_label_studio(args.ls_venv)
    token = os.urandom(20).hex()
    ls_port, serve_port = free_port(), free_port()
    ls_proc = start_label_studio(ls_exe, work, ls_port, token)
    serve_proc = None
    try:
        ckpt = args.checkpoint.resolve() if args.checkpoint else \
            demo_checkpoint(work, args.train_steps)
        paths = stage_images(args.images or demo_images(work), work)
        threshold = args.score_threshold
        if threshold is None:
            threshold = auto_threshold(predict_py(ckpt, work, 0.0, None))
        serve_proc = start_service(args, ckpt, work, serve_port, threshold)
        ls_url, serve_url = f"http://127.0.0.1:{ls_port}", f"http://127.0.0.1:{serve_port}"
        wait_up(f"{ls_url}/health", ls_proc, "Label Studio", 300)
        wait_up(f"{serve_url}/health", serve_proc, "tools/serve.py", 300)
        ls = LabelStudio(ls_url, token)
        log(f"Label Studio {ls.call('GET', '/api/version').get('release')} at {ls_url}, "
            f"user {ls.call('GET', '/api/current-user/whoami')['email']}; service at "
            f"{serve_url}")
        customers = args.customers or service_customers(serve_url)[-2:]
        outcomes = [customer_project(ls, c, paths, serve_url, predict_py(ckpt, work, threshold,
                                                                         c), threshold)
                    for c in customers]
        # imported here: that module builds on this one's helpers
        from benchmarks.label_studio_import_check import import_check, import_report
        imported = import_check(ls, ckpt, work, customers[-1], threshold)
        served_ok = report(outcomes, threshold, args.backend)
        return import_report(imported) and served_ok
    finally:
        stop(serve_proc)
        stop(ls_proc)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--checkpoint", type=Path, help="checkpoint to serve (default: a 2-step demo "
                   "checkpoint with spread-out heads, module docstring)")
    p.add_argument("--images", type=Path, help="folder of images to import as tasks (default: "
                   "the demo's test images)")
    p.add_argument("--customers", nargs=2, metavar="NAME", help="the two customers' projects "
                   "(default: the service's last two)")
    p.add_argument("--score-threshold", type=float, help="(default: module docstring, 3)")
    p.add_argument("--backend", choices=("onnxruntime", "torch"), default="onnxruntime",
                   help="the service's backend (default: %(default)s)")
    p.add_argument("--train-steps", type=int, default=2, help="steps of the demo checkpoint "
                   "(default: %(default)s)")
    p.add_argument("--ls-venv", type=Path, default=REPO / ".ls-venv",
                   help="Label Studio's venv, created when missing (default: .ls-venv)")
    p.add_argument("--keep", action="store_true", help="keep the work folder (default: kept "
                   "only when the check fails)")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="taxdet-ls-check-"))
    ok = False
    try:
        ok = check(args, work)
    finally:
        if ok and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            log(f"work folder kept: {work} (label-studio.log, serve.log)")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
