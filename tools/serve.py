"""Serve pre-labels to Label Studio: its ML backend protocol, every customer from one process.

    python tools/serve.py --checkpoint runs/demo/last.pt [--port 9090]
        [--project ID=CUSTOMER ...] [--images-root DIR]
        [--label-studio-url URL] [--label-studio-token KEY]
        [--auth-token TOKEN | --basic-auth USER:PASS] [--thresholds [CUSTOMER=]YAML ...]

Connect it in Label Studio (project settings -> Model -> Connect model, URL
http://127.0.0.1:9090). A project is mapped to its customer by the labels of its labeling
config (the RectangleLabels values equal one customer's label names), or by --project. Binds
127.0.0.1 unless --host is given. See docs/serving.md. Exit 0 when stopped, 1 on bad input,
2 on usage.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from pathlib import Path

from taxdet.core.errors import run_cli
from taxdet.tools import cli_flags as flags

ENV_URL, ENV_TOKEN = "LABEL_STUDIO_URL", "LABEL_STUDIO_API_KEY"
ENV_AUTH = "TAXDET_SERVE_TOKEN"
DEFAULT_BACKEND = "onnxruntime" if importlib.util.find_spec("onnxruntime") else "torch"


def _model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("model")
    flags.add_checkpoint(g, "its model, weights and taxonomies", required=True)
    flags.add_backend(g, DEFAULT_BACKEND, "onnxruntime when installed, else torch; here "
                      "%(default)s")
    flags.add_device(g, "for the torch backend (ONNX Runtime runs on the CPU)")
    flags.add_no_ema(g)
    flags.add_hierarchy_decoding(g, "score each parent label as the max over its descendants, "
                                 "as predict.py")
    g.add_argument("--thresholds", action="append", default=[], metavar="[CUSTOMER=]YAML",
                   help="per-class thresholds of a customer (evaluate.py --fit-thresholds); "
                   "repeatable; without CUSTOMER= the file's taxonomy: names it (default: "
                   "none, every class uses --score-threshold)")
    g.add_argument("--score-threshold", type=float, default=0.3, metavar="X",
                   help="lowest score kept for classes no thresholds file lists "
                   "(default: %(default)s)")


def _source_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("projects and images")
    g.add_argument("--project", action="append", default=[], metavar="ID=CUSTOMER",
                   help="serve Label Studio project ID as CUSTOMER, whatever its labels; "
                   "repeatable (default: match each project by its labels)")
    g.add_argument("--images-root", type=Path, metavar="DIR",
                   help="read /data/local-files/?d=REL as DIR/REL and /data/upload/REL as "
                   "DIR/upload/REL, never outside DIR (default: fetch from Label Studio)")
    g.add_argument("--label-studio-url", default=os.environ.get(ENV_URL), metavar="URL",
                   help=f"Label Studio's address, to fetch /data/... images (default: ${ENV_URL}"
                   ", else the hostname /setup sends)")
    g.add_argument("--label-studio-token", default=os.environ.get(ENV_TOKEN), metavar="KEY",
                   help=f"Label Studio API key, sent only to that address (default: ${ENV_TOKEN}"
                   ", else the one /setup sends)")
    g.add_argument("--max-image-mb", type=float, default=32, metavar="MB",
                   help="largest image file read or downloaded (default: %(default)s)")
    g.add_argument("--max-image-pixels", type=int, default=40_000_000, metavar="N",
                   help="largest image, width x height (default: %(default)s)")


def _server_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("server")
    g.add_argument("--host", default="127.0.0.1",
                   help="address to bind (default: %(default)s, this machine only)")
    g.add_argument("--port", type=int, default=9090, help="port (default: %(default)s)")
    g.add_argument("--auth-token", default=os.environ.get(ENV_AUTH), metavar="TOKEN",
                   help=f"require 'Authorization: Bearer TOKEN' (default: ${ENV_AUTH}, else "
                   "open)")
    g.add_argument("--basic-auth", metavar="USER:PASS",
                   help="require HTTP basic auth, as Label Studio's model settings send it")
    g.add_argument("--max-batch", type=int, default=8, metavar="N",
                   help="images per forward pass across concurrent requests (default: "
                   "%(default)s)")
    g.add_argument("--max-wait-ms", type=float, default=5.0, metavar="MS",
                   help="longest wait for a batch to fill (default: %(default)s)")
    g.add_argument("--max-body-mb", type=float, default=16, metavar="MB",
                   help="largest request body (default: %(default)s)")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="serve.py", description=__doc__.split("\n")[0])
    _model_flags(p)
    _source_flags(p)
    _server_flags(p)
    flags.verbosity(p)
    return p


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = build_parser()
    args = p.parse_args(argv)
    if not 0 <= args.score_threshold <= 1:
        p.error(f"--score-threshold {args.score_threshold}: expected a value in [0, 1]")
    if args.max_batch < 1 or args.max_wait_ms < 0 or not 0 < args.port < 65536:
        p.error("--max-batch must be >= 1, --max-wait-ms >= 0 and --port in 1..65535")
    if args.basic_auth is not None and ":" not in args.basic_auth:
        p.error("--basic-auth: expected USER:PASS")
    return args


def options(args: argparse.Namespace):
    from taxdet.detection.serving.image_fetch import FetchLimits
    from taxdet.detection.serving.serve_options import ServeOptions
    mb = 1024 * 1024
    return ServeOptions(
        checkpoint=args.checkpoint, projects=args.project, images_root=args.images_root,
        label_studio_url=args.label_studio_url, label_studio_token=args.label_studio_token,
        auth_token=args.auth_token, basic_auth=args.basic_auth, max_batch=args.max_batch,
        max_wait_ms=args.max_wait_ms, thresholds=args.thresholds,
        score_threshold=args.score_threshold,
        limits=FetchLimits(int(args.max_image_mb * mb), args.max_image_pixels),
        max_body_bytes=int(args.max_body_mb * mb), device=args.device, use_ema=not args.no_ema,
        hierarchy_decoding=args.hierarchy_decoding, backend=args.backend,
        threads=args.threads, host=args.host,
        port=args.port)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    flags.start_logging(args)

    def run() -> int:
        from taxdet.detection.serving.serve_main import run_server
        return run_server(options(args))
    return run_cli(run)


if __name__ == "__main__":
    sys.exit(main())
