"""The HTTP face of the service: Label Studio's ML backend protocol on FastAPI.

Routes (as HumanSignal's ``label_studio_ml/api.py`` serves them; docs/serving.md):

* ``GET /health`` and ``GET /``: ``{"status": "UP", "model_class": ...}``;
* ``POST /setup``: ``{"project", "schema", ...}`` -> ``{"model_version"}``;
* ``POST /predict``: ``{"tasks", "project", "label_config", ...}`` ->
  ``{"results": [{"result": [...], "score", "model_version"}], "model_version"}``;
* ``POST /webhook``: logged; training events answer 201 ``{"result": null, "status": "ok"}``,
  others 200 ``{"status": "Unknown event"}`` (no training from it yet);
* ``GET /metrics``: ``{}``.

``RequestGuard`` (pure ASGI) wraps every route: access (bearer token or basic auth, every
route, like the SDK), the body size limit, one log line per request, and a plain 500 without
traceback for anything unexpected (the traceback goes to the log).
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import time
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

from taxdet.detection.serving.prelabel_service import PrelabelService

logger = logging.getLogger(__name__)
MODEL_CLASS = "TaxonomyDetector"
TRAIN_EVENTS = ("ANNOTATION_CREATED", "ANNOTATION_UPDATED", "ANNOTATION_DELETED",
                "START_TRAINING")


class BodyTooLarge(Exception):
    pass


class BadBody(ValueError):
    """A request body that is not a JSON object: 400."""


class Access:
    """Accepted ``Authorization`` headers: ``Bearer TOKEN`` and/or ``Basic user:pass``; open
    when neither is set."""

    def __init__(self, token: str | None = None, basic: str | None = None):
        self.token = token
        self.basic = base64.b64encode(basic.encode()).decode() if basic else None

    @property
    def open(self) -> bool:
        return not self.token and not self.basic

    def allows(self, header: str) -> bool:
        scheme, _, value = header.partition(" ")
        value = value.strip()
        if self.token and scheme.lower() == "bearer":
            return hmac.compare_digest(value.encode(), self.token.encode())
        if self.basic and scheme.lower() == "basic":
            return hmac.compare_digest(value.encode(), self.basic.encode())
        return False


async def send_json(send, status: int, body: dict, headers: dict[str, str] | None = None) -> None:
    data = json.dumps(body).encode()
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": data})


class RequestGuard:
    """ASGI middleware: access, body limit, log line, no traceback to the client."""

    def __init__(self, app, access: Access, max_body_bytes: int):
        self.app, self.access, self.max_body = app, access, max_body_bytes

    def _refusal(self, scope) -> tuple[int, dict, dict] | None:
        headers = {k.decode().lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if not self.access.open and not self.access.allows(headers.get("authorization", "")):
            return 401, {"detail": "unauthorized"}, {"www-authenticate": 'Basic realm="taxdet"'}
        length = headers.get("content-length", "")
        if length.isdigit() and int(length) > self.max_body:
            return 413, {"detail": f"request body over {self.max_body} bytes"}, {}
        return None

    def _limited(self, receive):
        seen = 0

        async def limited():
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_body:
                raise BodyTooLarge()
            return message
        return limited

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        start, status = time.perf_counter(), [500]

        async def sending(message):
            if message["type"] == "http.response.start":
                status[0] = message["status"]
            await send(message)
        refusal = self._refusal(scope)
        try:
            if refusal:
                await send_json(sending, *refusal)
            else:
                await self.app(scope, self._limited(receive), sending)
        except BodyTooLarge:
            await send_json(sending, 413, {"detail": f"request body over {self.max_body} bytes"})
        except Exception as exc:
            logger.error("%s %s failed: %s: %s", scope["method"], scope["path"],
                         type(exc).__name__, exc, exc_info=True)
            await send_json(sending, 500, {"detail": "internal error (see the service's log)"})
        note = scope.get("state", {}).get("log", "")
        logger.info("%s %s %d %.1fms %s", scope["method"], scope["path"], status[0],
                    1000 * (time.perf_counter() - start), note)


async def json_body(request: Request) -> dict:
    """The request's JSON object; ``BadBody`` otherwise."""
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise BadBody("the request body is not JSON") from None
    if not isinstance(body, dict):
        raise BadBody("the request body is not a JSON object")
    return body


def add_routes(app: FastAPI, service: PrelabelService) -> None:
    @app.get("/")
    @app.get("/health")
    async def health() -> dict:
        return {"status": "UP", "model_class": MODEL_CLASS, "model_version":
                service.model_version, "customers": list(service.heads)}

    @app.get("/metrics")
    async def metrics() -> dict:
        return {}

    @app.post("/setup")
    async def setup(request: Request) -> JSONResponse:
        status, body, summary = service.setup(await json_body(request))
        request.state.log = summary
        return JSONResponse(body, status)

    @app.post("/predict")
    async def predict(request: Request) -> JSONResponse:
        status, body, summary = await service.predict(await json_body(request))
        request.state.log = summary
        return JSONResponse(body, status)

    @app.post("/webhook")
    async def webhook(request: Request) -> JSONResponse:
        body = await json_body(request)
        action = body.get("action")
        request.state.log = f"action {action}"
        if action not in TRAIN_EVENTS:
            return JSONResponse({"status": "Unknown event"}, 200)
        return JSONResponse({"result": None, "status": "ok"}, 201)


def create_app(service: PrelabelService, access: Access | None = None,
               max_body_bytes: int | None = None) -> FastAPI:
    """The FastAPI app (no docs routes: nothing but the protocol is served)."""
    @asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        await service.batcher.close()
    app = FastAPI(title="taxdet pre-labels", docs_url=None, redoc_url=None, openapi_url=None,
                  lifespan=lifespan)

    @app.exception_handler(BadBody)
    async def bad_body(request: Request, exc: BadBody) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, 400)
    add_routes(app, service)
    limit = max_body_bytes if max_body_bytes is not None else service.options.max_body_bytes
    app.add_middleware(RequestGuard, access=access or Access(), max_body_bytes=limit)
    return app
