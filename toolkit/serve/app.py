"""The HTTP side: Open Inference Protocol v2 REST routes, an image endpoint, /metrics and the web page.

One ASGI app. The inference route is answered in raw ASGI (it carries nearly all the traffic, and Starlette's
routing and request objects cost more than parsing a one-image request); every other route is a Starlette
route. The app's lifespan starts the models' batchers and any companion server (gRPC) in the same event loop.
"""

from __future__ import annotations

import functools
import re
import time
from typing import Awaitable, Callable, Optional, Protocol, Sequence

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Route

from ..runtime.errors import ImageError
from . import protocol, rest
from .config import ServeConfig
from .errors import ApiError
from .limits import BodyLimit, Disconnected, declared_too_big, error_body, read_body, send_body
from .page import page_html
from .registry import ServedModel
from .service import InferenceService

MAX_UPLOAD_FILES = 64
THREADPOOL_JSON_BYTES = 256 * 1024  # parse bigger bodies off the event loop
INFER_PATH = re.compile(r"^/v2/models/([^/]+)(?:/versions/([^/]+))?/infer$")
_HEADER_LENGTH = rest.HEADER_LENGTH.lower().encode()

Handler = Callable[["ServeApp", Request], Awaitable[Response]]


class Companion(Protocol):
    """Another front end started and stopped with the app (the gRPC server)."""

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


class StartupError(Exception):
    """A companion could not start (e.g. its port is taken): one line for the log, and the server exits."""


def json_response(content, status: int = 200) -> Response:
    return Response(orjson.dumps(content), status_code=status, media_type="application/json")


def observed(route: str) -> Callable[[Handler], Handler]:
    """Count and time every answer of a Starlette route, errors included, and turn ApiError into its JSON answer."""
    def wrap(fn: Handler) -> Handler:
        @functools.wraps(fn)
        async def handler(self: "ServeApp", request: Request) -> Response:
            started = time.perf_counter()
            try:
                response = await fn(self, request)
            except ApiError as exc:
                response = json_response({"error": exc.message}, exc.status)
            except HTTPException as exc:  # Starlette's own, e.g. a malformed multipart body
                response = json_response({"error": str(exc.detail)}, exc.status_code)
            self.service.answered("http", route, request.path_params.get("name", ""), str(response.status_code),
                                  started)
            return response
        return handler
    return wrap


class ServeApp:
    """The ASGI app of `edgecls serve`: routes are methods, the shared models and limits live in `service`."""

    def __init__(self, service: InferenceService, companions: Sequence[Companion] = ()) -> None:
        self.service = service
        self.config = service.config
        self.companions = list(companions)
        self.routes = Starlette(routes=self.route_table(), middleware=[
            Middleware(BodyLimit, max_bytes=self.config.max_body_bytes)],
            exception_handlers={HTTPException: self.http_error, ApiError: self.api_error})

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            match = INFER_PATH.match(scope["path"])
            if match is not None:
                await self.infer(scope, receive, send, *match.groups())
                return
        elif scope["type"] == "lifespan":
            await self.lifespan(receive, send)
            return
        await self.routes(scope, receive, send)

    async def lifespan(self, receive, send) -> None:
        """Start the batchers, then the companions; on shutdown (after uvicorn has answered every HTTP
        connection) stop the companions, then let the batchers finish what they hold."""
        await receive()  # lifespan.startup
        await self.service.start()
        try:
            for companion in self.companions:
                await companion.start()
        except StartupError as exc:
            await self.service.stop()
            await send({"type": "lifespan.startup.failed", "message": str(exc)})
            return
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
        for companion in reversed(self.companions):
            await companion.stop()
        await self.service.stop()
        await send({"type": "lifespan.shutdown.complete"})

    def route_table(self) -> list[Route]:
        routes = [Route("/", self.page, methods=["GET"]),
                  Route("/metrics", self.prometheus, methods=["GET"]),
                  Route("/v2", self.server_metadata, methods=["GET"]),
                  Route("/v2/health/live", self.live, methods=["GET"]),
                  Route("/v2/health/ready", self.ready, methods=["GET"]),
                  Route("/v2/repository/index", self.repository_index, methods=["POST"])]
        for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
            routes += [Route(prefix, self.model_metadata, methods=["GET"]),
                       Route(prefix + "/ready", self.model_ready, methods=["GET"]),
                       Route(prefix + "/classify", self.classify, methods=["POST"])]
        return routes

    async def infer(self, scope, receive, send, name: str, version: Optional[str]) -> None:
        """POST /v2/models/{name}[/versions/{version}]/infer: v2 JSON or binary tensors in, the same out."""
        if scope["method"] != "POST":
            await send_body(send, 405, error_body("Method Not Allowed"), headers=((b"allow", b"POST"),))
            return
        started = time.perf_counter()
        headers = ()
        try:
            body, content_type, header_length = await self.infer_body(scope, receive, name, version)
        except Disconnected:
            return
        except ApiError as exc:
            status, body, content_type = exc.status, error_body(exc.message), b"application/json"
            if exc.status == 413:
                headers = ((b"connection", b"close"),)
        else:
            status = 200
            if header_length is not None:
                headers = ((_HEADER_LENGTH, str(header_length).encode()),)
        await send_body(send, status, body, content_type, headers)
        self.service.answered("http", "infer", name, str(status), started)

    async def infer_body(self, scope, receive, name: str, version: Optional[str]) -> tuple[bytes, bytes, Optional[int]]:
        """The response body of one inference request, its content type and binary header length."""
        model = self.service.model(name, version)
        refused = declared_too_big(scope, self.config.max_body_bytes)
        if refused is not None:
            raise ApiError(413, refused)
        header_length = encoding = None
        for key, value in scope["headers"]:
            if key == _HEADER_LENGTH:
                header_length = value
            elif key == b"content-encoding":
                encoding = value.decode("latin-1").strip().lower()
        if encoding not in (None, "", "identity"):
            raise ApiError(415, f"Content-Encoding {encoding!r} is not supported; send the body uncompressed")
        body = await read_body(receive, self.config.max_body_bytes)
        parse = functools.partial(rest.parse_infer, body, header_length, model.classifier, self.config.top_k)
        request = await run_in_threadpool(parse) if len(body) > THREADPOOL_JSON_BYTES else parse()
        scores = await self.service.scores(model, request.pixels)
        out, header_length = rest.encode_infer(model.name, request, scores, model.classifier)
        return out, b"application/json" if header_length is None else b"application/octet-stream", header_length

    async def live(self, request: Request) -> Response:
        return json_response({"live": True})

    async def ready(self, request: Request) -> Response:
        return json_response({"ready": self.service.ready}, 200 if self.service.ready else 503)

    async def server_metadata(self, request: Request) -> Response:
        return json_response(protocol.server_metadata())

    async def repository_index(self, request: Request) -> Response:
        state = "READY" if self.service.ready else "UNAVAILABLE"
        return json_response([{"name": name, "version": protocol.VERSION, "state": state, "reason": ""}
                              for name in self.service.models])

    @observed("metadata")
    async def model_metadata(self, request: Request) -> Response:
        model = self.lookup(request)
        return json_response(protocol.model_metadata(model.name, model.classifier))

    @observed("ready")
    async def model_ready(self, request: Request) -> Response:
        model = self.lookup(request)
        ok = self.service.model_ready(model)
        return json_response({"name": model.name, "ready": ok}, 200 if ok else 503)

    @observed("classify")
    async def classify(self, request: Request) -> Response:
        """Image files (raw body, or multipart fields) -> labels, scores and the unsure flag."""
        model = self.lookup(request)
        top_k = _query_top_k(request, self.config.top_k)
        images = await _read_images(request)
        clf = model.classifier
        prepared = []
        for source, data in images:
            try:  # decoding holds the GIL: keep it off the loop
                prepared.append(await run_in_threadpool(clf.prepare, [data]))
            except ImageError as exc:
                raise ApiError(400, f"{source}: {exc.reason}") from None
        pixels = np.concatenate([p for p, _ in prepared])
        stats = {k: np.concatenate([s[k] for _, s in prepared]) for k in prepared[0][1]}
        scores = await self.service.scores(model, pixels)
        predictions = clf.decode(scores.probabilities, top_k, pixels=pixels, stats=stats)
        return json_response({"model_name": model.name, "variant": clf.info.variant, "predictions": [
            protocol.prediction_json(p, source) for p, (source, _) in zip(predictions, images)]})

    async def prometheus(self, request: Request) -> Response:
        return Response(self.service.metrics.render(), media_type=self.service.metrics.content_type)

    async def page(self, request: Request) -> Response:
        return HTMLResponse(page_html())

    def lookup(self, request: Request) -> ServedModel:
        return self.service.model(request.path_params["name"], request.path_params.get("version"))

    async def http_error(self, request: Request, exc: HTTPException) -> Response:
        return json_response({"error": str(exc.detail)}, exc.status_code)

    async def api_error(self, request: Request, exc: ApiError) -> Response:  # raised outside `observed` routes
        return json_response({"error": exc.message}, exc.status)


def create_app(models: Sequence[ServedModel], config: Optional[ServeConfig] = None,
               companions: Sequence[Companion] = ()) -> ServeApp:
    """An app serving `models`; their batchers start and drain with the app's lifespan."""
    return ServeApp(InferenceService(models, config), companions)


def _query_top_k(request: Request, default: int) -> int:
    raw = request.query_params.get("top_k")
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < 1:
        raise ApiError(400, f"top_k must be a positive integer, got {raw!r}")
    return int(raw)


async def _read_images(request: Request) -> list[tuple[str, bytes]]:
    """(name, bytes) of each uploaded image: multipart file fields, or the raw body as one image."""
    if request.headers.get("content-type", "").startswith("multipart/form-data"):
        form = await request.form(max_files=MAX_UPLOAD_FILES, max_fields=MAX_UPLOAD_FILES)
        images = []
        for key, value in form.multi_items():
            if isinstance(value, UploadFile):
                images.append((value.filename or key, await value.read()))
        await form.close()
        if not images:
            raise ApiError(400, "the multipart form holds no file; send the image in a file field")
        return images
    body = await request.body()
    if not body:
        raise ApiError(400, "empty request body; send image bytes (PNG, JPEG, ...) or a multipart form")
    return [(f"<{len(body)} bytes>", body)]
