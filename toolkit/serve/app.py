"""The ASGI app: Open Inference Protocol v2 routes, an image endpoint, /metrics and the web page."""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from contextlib import asynccontextmanager
from typing import Awaitable, Callable, Optional, Sequence

import numpy as np
import orjson
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.responses import JSONResponse as StarletteJSONResponse
from starlette.routing import Route

from .. import __version__
from ..runtime.errors import ImageError
from . import protocol
from .config import ServeConfig
from .errors import ApiError
from .limits import BodyLimit
from .metrics import ServeMetrics
from .page import page_html
from .registry import ServedModel

log = logging.getLogger("edgecls.serve")

MAX_UPLOAD_FILES = 64
THREADPOOL_JSON_BYTES = 256 * 1024  # parse bigger bodies off the event loop

Handler = Callable[[Request], Awaitable[Response]]


class JSONResponse(StarletteJSONResponse):
    """Starlette's JSONResponse rendered by orjson (several times faster on probability arrays)."""

    def render(self, content) -> bytes:
        return orjson.dumps(content)


def error_response(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(models: Sequence[ServedModel], config: Optional[ServeConfig] = None) -> Starlette:
    """An app serving `models`; their batchers start and drain with the app's lifespan."""
    config = config or ServeConfig()
    metrics = ServeMetrics(config.max_batch_size)
    by_name = {m.name: m for m in models}
    for m in models:
        m.attach(config, metrics)
    state = {"ready": False}

    @asynccontextmanager
    async def lifespan(app: Starlette):
        for m in models:
            await m.batcher.start()
        state["ready"] = True
        log.info("serving %s", ", ".join(f"{m.name} ({m.classifier.path.name} on {m.classifier.provider})"
                                         for m in models))
        try:
            yield
        finally:
            state["ready"] = False  # uvicorn has answered every connection; the batchers finish what they hold
            await asyncio.gather(*(m.batcher.close() for m in models))
            log.info("all in-flight requests answered; stopped")

    def observed(route: str) -> Callable[[Handler], Handler]:
        """Count and time every answer of a route, errors included, and turn ApiError into its JSON answer."""
        def wrap(fn: Handler) -> Handler:
            @functools.wraps(fn)
            async def handler(request: Request) -> Response:
                started = time.perf_counter()
                try:
                    response = await fn(request)
                except ApiError as exc:
                    response = error_response(exc.status, exc.message)
                except HTTPException as exc:  # Starlette's own, e.g. a malformed multipart body
                    response = error_response(exc.status_code, str(exc.detail))
                name = request.path_params.get("name", "")
                model = name if name in by_name else ""  # unknown names must not grow the label set
                metrics.requests.labels(model, route, str(response.status_code)).inc()
                metrics.latency.labels(model, route).observe(time.perf_counter() - started)
                return response
            return handler
        return wrap

    def lookup(request: Request) -> ServedModel:
        name = request.path_params["name"]
        model = by_name.get(name)
        if model is None:
            raise ApiError(404, f"unknown model {name!r}; this server has {', '.join(sorted(by_name))}")
        version = request.path_params.get("version")
        if version is not None and version != protocol.VERSION:
            raise ApiError(404, f"model {name!r} has no version {version!r} (only {protocol.VERSION!r})")
        return model

    async def predict(model: ServedModel, pixels: np.ndarray) -> np.ndarray:
        try:
            return await asyncio.wait_for(model.batcher.submit(pixels), config.timeout_s)
        except asyncio.TimeoutError:
            raise ApiError(504, f"model {model.name!r} did not answer within {config.timeout_s:g} s") from None

    async def live(request: Request) -> Response:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> Response:
        return JSONResponse({"ready": state["ready"]}, status_code=200 if state["ready"] else 503)

    async def server_metadata(request: Request) -> Response:
        return JSONResponse({"name": "edgecls", "version": __version__, "extensions": ["model_repository"]})

    async def repository_index(request: Request) -> Response:
        return JSONResponse([{"name": m.name, "version": protocol.VERSION, "state": "READY" if state["ready"] else
                              "UNAVAILABLE", "reason": ""} for m in models])

    @observed("metadata")
    async def model_metadata(request: Request) -> Response:
        model = lookup(request)
        return JSONResponse(protocol.model_metadata(model.name, model.classifier))

    @observed("ready")
    async def model_ready(request: Request) -> Response:
        model = lookup(request)
        ok = state["ready"] and model.batcher.running
        return JSONResponse({"name": model.name, "ready": ok}, status_code=200 if ok else 503)

    @observed("infer")
    async def infer(request: Request) -> Response:
        model = lookup(request)
        body = await request.body()
        if len(body) > THREADPOOL_JSON_BYTES:
            doc = await run_in_threadpool(protocol.decode_json, body)
        else:
            doc = protocol.decode_json(body)
        req = protocol.parse_infer_request(doc, model.classifier, config.top_k)
        probabilities = await predict(model, req.pixels)
        predictions = model.classifier.decode(probabilities, req.top_k, pixels=np.asarray(req.pixels))
        return JSONResponse(protocol.infer_response(model.name, req, probabilities, predictions))

    @observed("classify")
    async def classify(request: Request) -> Response:
        """Image files (raw body, or multipart fields) -> labels, scores and the unsure flag."""
        model = lookup(request)
        top_k = _query_top_k(request, config.top_k)
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
        probabilities = await predict(model, pixels)
        predictions = clf.decode(probabilities, top_k, pixels=pixels, stats=stats)
        return JSONResponse({"model_name": model.name, "predictions": [
            protocol.prediction_json(p, source) for p, (source, _) in zip(predictions, images)]})

    async def prometheus(request: Request) -> Response:
        return Response(metrics.render(), media_type=metrics.content_type)

    async def page(request: Request) -> Response:
        return HTMLResponse(page_html())

    routes = [Route("/", page, methods=["GET"]),
              Route("/metrics", prometheus, methods=["GET"]),
              Route("/v2", server_metadata, methods=["GET"]),
              Route("/v2/health/live", live, methods=["GET"]),
              Route("/v2/health/ready", ready, methods=["GET"]),
              Route("/v2/repository/index", repository_index, methods=["POST"])]
    for prefix in ("/v2/models/{name}", "/v2/models/{name}/versions/{version}"):
        routes += [Route(prefix, model_metadata, methods=["GET"]),
                   Route(prefix + "/ready", model_ready, methods=["GET"]),
                   Route(prefix + "/infer", infer, methods=["POST"]),
                   Route(prefix + "/classify", classify, methods=["POST"])]

    async def http_error(request: Request, exc: HTTPException) -> Response:
        return error_response(exc.status_code, str(exc.detail))

    async def api_error(request: Request, exc: ApiError) -> Response:  # raised outside `observed` routes
        return error_response(exc.status, exc.message)

    app = Starlette(routes=routes, lifespan=lifespan, middleware=[Middleware(BodyLimit, max_bytes=config.max_body_bytes)],
                    exception_handlers={HTTPException: http_error, ApiError: api_error})
    app.state.metrics = metrics
    app.state.config = config
    return app


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
