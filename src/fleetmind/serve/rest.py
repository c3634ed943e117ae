"""The Open Inference Protocol over HTTP/REST (KServe V2 JSON), beside the gRPC server.

::

    rest = RestServer(servicer, RestConfig(max_body_bytes=16 * MIB, tokens=("s3cret",)))
    port = await rest.start("0.0.0.0", 8000)   # on the event loop of the gRPC server
    ...                                        # curl localhost:8000/v2/health/ready
    await rest.stop(grace=10.0)

The endpoints answer from the gRPC servicer's repository, batchers and metrics,
so one batch may mix calls of both flavours and the metrics count both. A
failure is ``{"error": "..."}`` with the HTTP status that matches its gRPC one
(:data:`fleetmind.rpc.status.HTTP_STATUS`). The health endpoints are open (probes
carry no token), as the gRPC health service is; every other one needs the bearer
token when the server has tokens.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import logging
import math
import ssl
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from fleetmind import __version__
from fleetmind.core.errors import (
    AuthenticationError,
    FleetmindError,
    InvalidInputError,
    UnavailableError,
)
from fleetmind.rpc.status import bounded_details, http_status, status_code
from fleetmind.serve.explain import explained_outputs, wants_explanation
from fleetmind.serve.metrics import UNKNOWN_MODEL
from fleetmind.serve.model import ServedModel
from fleetmind.serve.protocol import decode_observations, requested_outputs
from fleetmind.serve.rest_codec import HEADER_LENGTH, infer_reply, infer_request, metadata_document
from fleetmind.serve.service import InferenceServicer
from fleetmind.serve.shedding import overload_message

logger = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

OPEN_PREFIX = "/v2/health/"
"""Paths answered without a token (liveness and readiness probes)."""


@dataclass(frozen=True)
class RestConfig:
    """How the REST server reads requests and whom it admits."""

    max_body_bytes: int = 16 * 1024 * 1024
    """Largest request body; a bigger one is answered 413."""
    body_timeout_s: float = 30.0
    """Longest a request's body may take to arrive; then 408 and the connection closes."""
    tokens: tuple[str, ...] = ()
    """Accepted bearer tokens; empty: no token needed."""
    ssl_context: ssl.SSLContext | None = None
    """TLS (and client certificates, when it requires them); None: plain HTTP."""
    share_port: bool = False
    """Bind with SO_REUSEPORT beside other worker processes."""


class _BodyTimeoutError(Exception):
    """The request body did not arrive in time."""


def error_response(status: int, message: str, **headers: str) -> web.Response:
    """``{"error": message}`` with ``status``."""
    body = json.dumps({"error": bounded_details(message)}).encode()
    return web.Response(status=status, body=body, content_type="application/json", headers=headers)


def _json(document: Any, status: int = 200) -> web.Response:
    return web.Response(
        status=status, body=json.dumps(document).encode(), content_type="application/json"
    )


class RestServer:
    """KServe V2 REST endpoints over an :class:`InferenceServicer`'s state."""

    def __init__(self, servicer: InferenceServicer, config: RestConfig) -> None:
        self.servicer = servicer
        self.config = config
        self._tokens = tuple(f"Bearer {t}".encode() for t in config.tokens)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None

    def app(self) -> web.Application:
        """The aiohttp application (its routes and middlewares)."""
        app = web.Application(
            client_max_size=self.config.max_body_bytes,
            middlewares=[self._errors, self._auth],
        )
        model = "/v2/models/{model}"
        version = model + "/versions/{version}"
        app.router.add_get("/v2/health/live", self.live)
        app.router.add_get("/v2/health/ready", self.ready)
        app.router.add_get("/v2", self.server_metadata)
        for prefix in (model, version):
            app.router.add_get(prefix, self.model_metadata)
            app.router.add_get(prefix + "/ready", self.model_ready)
            app.router.add_post(prefix + "/infer", self.infer)
        return app

    async def start(self, host: str, port: int) -> int:
        """Listen on ``host:port`` (0 picks a port); returns the bound port."""
        # stop() waits for requests in flight itself, for the grace it is given
        self._runner = web.AppRunner(
            self.app(), access_log=None, handle_signals=False, shutdown_timeout=0
        )
        await self._runner.setup()
        site = web.TCPSite(
            self._runner,
            host,
            port,
            ssl_context=self.config.ssl_context,
            reuse_port=self.config.share_port or None,
            backlog=1024,
        )
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            raise UnavailableError(
                f"cannot serve HTTP on {host}:{port}: {exc.strerror} (is another program "
                "using the port?)"
            ) from exc
        self.port = int(self._runner.addresses[0][1])
        return self.port

    async def stop(self, grace: float) -> None:
        """Stop listening, let requests in flight finish for up to ``grace`` seconds,
        then close every connection."""
        if self._runner is None:
            return
        runner, self._runner = self._runner, None
        for site in list(runner.sites):
            await site.stop()
        server = runner.server
        if server is not None:
            server.pre_shutdown()  # idle keep-alive connections close now
            await server.shutdown(grace)
        await runner.cleanup()

    # --- middlewares ----------------------------------------------------------------

    @web.middleware
    async def _errors(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except FleetmindError as exc:
            extra = {"WWW-Authenticate": "Bearer"} if isinstance(exc, AuthenticationError) else {}
            return error_response(http_status(exc), str(exc), **extra)
        except _BodyTimeoutError:
            # Answer, then close at once: waiting for the rest of the body (aiohttp's
            # lingering close) is what the timeout is there to end.
            response = error_response(408, _timeout_message(self.config.body_timeout_s))
            response.force_close()
            await response.prepare(request)
            await response.write_eof()
            request.protocol.force_close()
            return response
        except web.HTTPRequestEntityTooLarge:
            response = error_response(413, _too_large_message(self.config.max_body_bytes))
            response.force_close()
            return response
        except web.HTTPException as exc:
            return error_response(exc.status, exc.reason)
        except Exception:
            logger.exception("unexpected failure answering %s %s", request.method, request.path)
            return error_response(500, "internal error; the server log has the details")

    @web.middleware
    async def _auth(self, request: web.Request, handler: Handler) -> web.StreamResponse:
        if self._tokens and not request.path.startswith(OPEN_PREFIX):
            offered = request.headers.get("Authorization")
            if offered is None:
                raise AuthenticationError(
                    "missing credentials: send header 'Authorization: Bearer <token>'"
                )
            value = offered.encode("latin-1", "replace")
            # Compare against every token so that timing does not tell which one matched.
            if sum(hmac.compare_digest(value, token) for token in self._tokens) == 0:
                raise AuthenticationError("invalid bearer token")
        return await handler(request)

    # --- endpoints ------------------------------------------------------------------

    async def live(self, request: web.Request) -> web.Response:
        """``GET /v2/health/live``: 200 while the process answers."""
        return _json({"live": True})

    async def ready(self, request: web.Request) -> web.Response:
        """``GET /v2/health/ready``: 200 when every model is loaded, 503 otherwise."""
        ready = self.servicer.accepting and bool(self.servicer.repository.names())
        return _json({"ready": ready}, 200 if ready else 503)

    async def server_metadata(self, request: web.Request) -> web.Response:
        """``GET /v2``: the server's name, version and protocol extensions."""
        return _json({"name": "fleetmind", "version": __version__, "extensions": []})

    def _model(self, request: web.Request) -> ServedModel:
        info = request.match_info
        return self.servicer.repository.get(info["model"], info.get("version", ""))

    async def model_metadata(self, request: web.Request) -> web.Response:
        """``GET /v2/models/{m}[/versions/{v}]``: inputs, outputs, versions."""
        model = self._model(request)
        return _json(metadata_document(model, self.servicer.repository.versions(model.name)))

    async def model_ready(self, request: web.Request) -> web.Response:
        """``GET /v2/models/{m}[/versions/{v}]/ready``: 200 ready, 503 not yet or stopping."""
        model = self._model(request)
        ready = self.servicer.accepting
        document = {"name": model.name, "version": model.version, "ready": ready}
        return _json(document, 200 if ready else 503)

    async def infer(self, request: web.Request) -> web.Response:
        """``POST /v2/models/{m}[/versions/{v}]/infer``: JSON (or binary) tensors in and out."""
        metrics = self.servicer.metrics
        start = time.perf_counter()
        if pushback_ms := self.servicer.overloaded(request.match_info.get("model", ""), start):
            retry_after = {"Retry-After": str(math.ceil(pushback_ms / 1000))}  # whole seconds
            return error_response(429, overload_message(pushback_ms), **retry_after)
        label, status, started = UNKNOWN_MODEL, "OK", False
        try:
            model = self._model(request)
            label = model.name
            metrics.started(label)
            started = True
            return await self._infer(request, model)
        except BaseException as exc:
            status = _status_name(exc)
            raise
        finally:
            metrics.record(label, status, time.perf_counter() - start, started=started)

    async def _infer(self, request: web.Request, model: ServedModel) -> web.Response:
        body = await self._body(request)
        message, binary_default = infer_request(body, _header_length(request))
        rows = decode_observations(message, model)
        if wants_explanation(message):
            names, outputs = await explained_outputs(message, model, rows)
            reply, json_length = infer_reply(model, message, names, outputs, binary_default)
        else:
            names = requested_outputs(message, model)
            timed = await model.batcher.submit_timed(rows)
            reply, json_length = infer_reply(
                model, message, names, timed.outputs, binary_default, timing=timed
            )
        if json_length is None:
            return web.Response(body=reply, content_type="application/json")
        return web.Response(
            body=reply,
            content_type="application/octet-stream",
            headers={HEADER_LENGTH: str(json_length)},
        )

    async def _body(self, request: web.Request) -> bytes:
        declared = request.content_length
        if declared is not None and declared > self.config.max_body_bytes:
            raise web.HTTPRequestEntityTooLarge(
                max_size=self.config.max_body_bytes, actual_size=declared
            )
        try:
            async with asyncio.timeout(self.config.body_timeout_s):
                return await request.read()
        except TimeoutError:
            raise _BodyTimeoutError from None


def _header_length(request: web.Request) -> int | None:
    text = request.headers.get(HEADER_LENGTH)
    if text is None:
        return None
    if not text.strip().isdigit():
        raise InvalidInputError(f"{HEADER_LENGTH} is {text[:64]!r}; send a byte count")
    return int(text)


def _timeout_message(seconds: float) -> str:
    return f"the request body did not arrive within {seconds:g} s; the connection is closed"


def _too_large_message(limit: int) -> str:
    return (
        f"the request body is over the {limit}-byte limit (--max-message-mib); send fewer "
        "rows per request"
    )


def _status_name(exc: BaseException) -> str:
    """The gRPC status name the metrics count a failed REST call under."""
    if isinstance(exc, asyncio.CancelledError):
        return "CANCELLED"
    if isinstance(exc, _BodyTimeoutError):
        return "DEADLINE_EXCEEDED"
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        return "RESOURCE_EXHAUSTED"
    if isinstance(exc, web.HTTPException):
        return "INVALID_ARGUMENT"
    return status_code(exc).name
