"""Errors <-> gRPC status codes, in both directions.

Servers wrap their handlers with :func:`rpc_errors`: a :class:`FleetmindError`
becomes its class's status (``grpc_status``) with its message, anything else
becomes ``INTERNAL`` (and is logged with its traceback); the server stays up.
Clients turn a failed call back into the matching error with :func:`error_from_rpc`.
"""

from __future__ import annotations

import functools
import inspect
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any, TypeVar

import grpc
from google.protobuf.descriptor import MethodDescriptor
from grpc import aio

from fleetmind.core import errors
from fleetmind.rpc.handlers import MalformedRequest

logger = logging.getLogger(__name__)

RequestT = TypeVar("RequestT")
ResponseT = TypeVar("ResponseT")

_BY_STATUS: dict[grpc.StatusCode, type[errors.FleetmindError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: errors.InvalidInputError,
    grpc.StatusCode.NOT_FOUND: errors.NotFoundError,
    grpc.StatusCode.FAILED_PRECONDITION: errors.PreconditionError,
    grpc.StatusCode.RESOURCE_EXHAUSTED: errors.OverloadedError,
    grpc.StatusCode.UNAUTHENTICATED: errors.AuthenticationError,
    grpc.StatusCode.PERMISSION_DENIED: errors.PermissionDeniedError,
    grpc.StatusCode.UNAVAILABLE: errors.UnavailableError,
    grpc.StatusCode.DEADLINE_EXCEEDED: errors.UnavailableError,
    grpc.StatusCode.CANCELLED: errors.UnavailableError,
}


def status_code(exc: BaseException) -> grpc.StatusCode:
    """The gRPC status of ``exc`` (``INTERNAL`` for anything not ours)."""
    name = getattr(exc, "grpc_status", "INTERNAL") if isinstance(exc, errors.FleetmindError) else ""
    return getattr(grpc.StatusCode, name, grpc.StatusCode.INTERNAL)


HTTP_STATUS: dict[grpc.StatusCode, int] = {
    grpc.StatusCode.OK: 200,
    grpc.StatusCode.INVALID_ARGUMENT: 400,
    grpc.StatusCode.FAILED_PRECONDITION: 400,
    grpc.StatusCode.UNAUTHENTICATED: 401,
    grpc.StatusCode.PERMISSION_DENIED: 403,
    grpc.StatusCode.NOT_FOUND: 404,
    grpc.StatusCode.DEADLINE_EXCEEDED: 408,
    grpc.StatusCode.RESOURCE_EXHAUSTED: 429,
    grpc.StatusCode.CANCELLED: 503,
    grpc.StatusCode.UNAVAILABLE: 503,
}
"""The HTTP status that answers each gRPC status (the HTTP/REST flavour of a service
reports the same failure as its gRPC flavour); anything else is 500."""


def http_status(exc: BaseException) -> int:
    """The HTTP status of ``exc``: that of its gRPC status (500 for anything not ours)."""
    return HTTP_STATUS.get(status_code(exc), 500)


def error_from_rpc(exc: grpc.RpcError, target: str = "") -> errors.FleetmindError:
    """The fleetmind error a failed call stands for, its message naming the peer."""
    code = exc.code() if isinstance(exc, grpc.Call) else grpc.StatusCode.UNKNOWN
    details = exc.details() if isinstance(exc, grpc.Call) else str(exc)
    cls = _BY_STATUS.get(code, errors.FleetmindError)
    where = f" from {target}" if target else ""
    if code == grpc.StatusCode.CANCELLED:
        details = f"{details} ({_CANCELLED_HINT})"
    return cls(f"{code.name}{where}: {details}")


_CANCELLED_HINT = (
    "the server dropped the call: it is overloaded (too many calls waiting) or shutting "
    "down; retry later"
)


MAX_DETAILS_CHARS = 512
"""Longest status message a server sends. Messages quote caller input through
:func:`fleetmind.core.errors.echo`; this bound is the last guard, because a status
message travels as a header and gRPC refuses headers over 8 KiB (percent-encoded,
a character can take 12 bytes)."""


def bounded_details(message: str) -> str:
    """``message`` cut to :data:`MAX_DETAILS_CHARS`."""
    if len(message) <= MAX_DETAILS_CHARS:
        return message
    cut = len(message) - MAX_DETAILS_CHARS
    return f"{message[:MAX_DETAILS_CHARS]}...({cut} more characters)"


async def _abort_with_status(
    context: aio.ServicerContext[Any, Any], exc: Exception, where: str
) -> None:
    """Abort the call: a FleetmindError with its own status, anything else as INTERNAL."""
    if isinstance(exc, errors.FleetmindError):
        await context.abort(status_code(exc), bounded_details(str(exc)))
    logger.exception("unexpected failure in %s", where)
    await context.abort(grpc.StatusCode.INTERNAL, f"internal error: {type(exc).__name__}")


class _LogThrottle:
    """Logs at most one line per ``interval_s``, saying how many it held back."""

    def __init__(self, interval_s: float = 60.0) -> None:
        self.interval_s = interval_s
        self._next = 0.0
        self._held = 0

    def warning(self, message: str, *args: object) -> None:
        now = time.monotonic()
        if now < self._next:
            self._held += 1
            return
        held, self._held, self._next = self._held, 0, now + self.interval_s
        suffix = f" ({held} more since the last such line)" if held else ""
        logger.warning(message + suffix, *args)


_malformed_log = _LogThrottle()
"""Malformed requests reach servers that anyone can call (health needs no token):
one line a minute tells the operator without letting callers fill the log."""


async def refuse_malformed(
    context: aio.ServicerContext[Any, Any], request: MalformedRequest
) -> None:
    """Answer ``INVALID_ARGUMENT`` to bytes that did not parse (raises AbortError)."""
    _malformed_log.warning(
        "refused a request that is not a valid %s from %s", request.message_type, context.peer()
    )
    await context.abort(grpc.StatusCode.INVALID_ARGUMENT, bounded_details(request.describe()))


def refusing_malformed(
    method: Callable[..., Any], descriptor: MethodDescriptor
) -> Callable[..., Any]:
    """``method`` of a servicer written elsewhere (health, reflection), answering
    malformed requests ``INVALID_ARGUMENT`` instead of passing them on.

    A :data:`fleetmind.rpc.handlers.Guard` for :func:`~fleetmind.rpc.handlers.add_service`.
    """
    if descriptor.client_streaming:

        async def checked(requests: AsyncIterator[Any], context: Any) -> AsyncIterator[Any]:
            async for request in requests:
                if isinstance(request, MalformedRequest):
                    await refuse_malformed(context, request)
                yield request

        if inspect.isasyncgenfunction(method):

            async def stream_in_generator(requests: Any, context: Any) -> AsyncIterator[Any]:
                async for reply in method(checked(requests, context), context):
                    yield reply

            return stream_in_generator

        async def stream_in(requests: Any, context: Any) -> Any:
            return await method(checked(requests, context), context)

        return stream_in

    if inspect.isasyncgenfunction(method):

        async def generator(request: Any, context: Any) -> AsyncIterator[Any]:
            if isinstance(request, MalformedRequest):
                await refuse_malformed(context, request)
            async for reply in method(request, context):
                yield reply

        return generator

    async def unary(request: Any, context: Any) -> Any:
        if isinstance(request, MalformedRequest):
            await refuse_malformed(context, request)
        return await method(request, context)

    return unary


def rpc_errors(
    handler: Callable[[Any, RequestT, aio.ServicerContext[Any, Any]], Awaitable[ResponseT]],
) -> Callable[[Any, RequestT, aio.ServicerContext[Any, Any]], Awaitable[ResponseT]]:
    """Decorate an async servicer method so every failure becomes a proper status.

    A :class:`MalformedRequest` (bytes that did not parse) is answered
    ``INVALID_ARGUMENT`` before the handler runs.
    """

    @functools.wraps(handler)
    async def wrapped(
        self: Any, request: RequestT, context: aio.ServicerContext[Any, Any]
    ) -> ResponseT:
        if isinstance(request, MalformedRequest):
            await refuse_malformed(context, request)
        try:
            return await handler(self, request, context)
        except aio.AbortError:
            raise
        except Exception as exc:
            await _abort_with_status(context, exc, handler.__qualname__)
        raise AssertionError("unreachable: context.abort raises")  # pragma: no cover

    return wrapped


async def checked_requests(requests: AsyncIterator[Any]) -> AsyncIterator[Any]:
    """The messages of a client stream; InvalidInputError at the first malformed one."""
    index = 0
    async for request in requests:
        if isinstance(request, MalformedRequest):
            raise errors.InvalidInputError(f"stream message {index}: {request.describe()}")
        yield request
        index += 1


def rpc_stream_errors(
    handler: Callable[[Any, Any, aio.ServicerContext[Any, Any]], AsyncIterator[ResponseT]],
) -> Callable[[Any, Any, aio.ServicerContext[Any, Any]], AsyncIterator[ResponseT]]:
    """Like :func:`rpc_errors`, for a server-streaming method (an async generator)."""

    @functools.wraps(handler)
    async def wrapped(
        self: Any, request: Any, context: aio.ServicerContext[Any, Any]
    ) -> AsyncIterator[ResponseT]:
        if isinstance(request, MalformedRequest):
            await refuse_malformed(context, request)
        try:
            async for item in handler(self, request, context):
                yield item
        except aio.AbortError:
            raise
        except Exception as exc:
            await _abort_with_status(context, exc, handler.__qualname__)

    return wrapped
