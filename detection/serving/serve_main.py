"""Start the service: load the model once, say what is served, run uvicorn."""

from __future__ import annotations

import logging

from taxdet.detection.serving.prelabel_service import PrelabelService
from taxdet.detection.serving.serve_app import Access, create_app
from taxdet.detection.serving.serve_options import ServeOptions

logger = logging.getLogger(__name__)


def startup_lines(service: PrelabelService, url: str) -> list[str]:
    """What the service prints once loaded: backend, customers and their labels, URL."""
    o = service.options
    lines = [f"model {o.checkpoint} (version {service.model_version}), backend {o.backend}, "
             f"hierarchy decoding {'on' if service.hierarchy else 'off'}, "
             f"batches of up to {o.max_batch} within {o.max_wait_ms:g} ms"]
    for customer, space in service.spaces.items():
        labels = [n for n in space.names.values() if n not in space.not_predicted]
        th = "thresholds file" if customer in service.thresholds else \
            f"score >= {o.score_threshold:g}"
        lines.append(f"  customer {customer}: {', '.join(labels)} ({th})")
    for pid, customer in service.customer_map.projects.items():
        lines.append(f"  project {pid} -> {customer} (--project)")
    access = "bearer token" if o.auth_token else ""
    access += (" or " if access else "") + "basic auth" if o.basic_auth else ""
    lines.append(f"serving Label Studio's ML backend protocol at {url} "
                 f"(access: {access or 'open'})")
    return lines


def run_server(options: ServeOptions) -> int:
    """Load, log the startup lines, serve until interrupted."""
    import uvicorn
    service = PrelabelService(options)
    app = create_app(service, Access(options.auth_token, options.basic_auth))
    host = f"[{options.host}]" if ":" in options.host else options.host
    for line in startup_lines(service, f"http://{host}:{options.port}"):
        logger.info(line)
    if options.host not in ("127.0.0.1", "localhost", "::1") and \
            not (options.auth_token or options.basic_auth):
        logger.warning("listening on %s without --auth-token or --basic-auth: anyone who can "
                       "reach it can use the model", options.host)
    uvicorn.run(app, host=options.host, port=options.port, log_level="warning",
                access_log=False)
    return 0
