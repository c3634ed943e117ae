"""Bearer-token authentication for gRPC servers and clients.

Callers send ``authorization: Bearer <token>`` metadata (:func:`bearer_metadata`).
The server interceptor refuses any call without a known token with
``UNAUTHENTICATED``, except methods whose full name starts with one of the open
prefixes (by default the health service, so probes keep working).
"""

from __future__ import annotations

import hmac
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from grpc import aio

from fleetmind.core.errors import ConfigError

if TYPE_CHECKING:
    Continuation = Callable[
        [grpc.HandlerCallDetails], Awaitable[grpc.RpcMethodHandler[Any, Any] | None]
    ]

HEALTH_PREFIX = "/grpc.health.v1.Health/"
"""Method prefix of the standard health service."""


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """Call metadata that carries ``token``."""
    return (("authorization", f"Bearer {token}"),)


def read_tokens(path: Path) -> tuple[str, ...]:
    """Tokens from a file, one per line (blank lines and ``#`` comments ignored)."""
    try:
        lines = Path(path).read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ConfigError(f"cannot read token file {path}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise ConfigError(f"token file {path} is not UTF-8 text; save it as UTF-8") from None
    tokens = tuple(t for t in (line.strip() for line in lines) if t and not t.startswith("#"))
    if not tokens:
        raise ConfigError(f"token file {path} holds no token; write one token per line")
    return tokens


def _deny(message: str) -> grpc.RpcMethodHandler[Any, Any]:
    async def deny(request: Any, context: aio.ServicerContext[Any, Any]) -> Any:
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    return grpc.unary_unary_rpc_method_handler(deny)


class TokenAuthInterceptor(aio.ServerInterceptor):
    """Lets a call through only with ``authorization: Bearer <known token>``."""

    def __init__(self, tokens: Iterable[str], open_prefixes: Iterable[str] = (HEALTH_PREFIX,)):
        self._tokens = tuple(t.encode() for t in tokens)
        if not self._tokens:
            raise ConfigError("token authentication needs at least one token")
        self._open = tuple(open_prefixes)
        self._missing = _deny("missing credentials: send metadata 'authorization: Bearer <token>'")
        self._wrong = _deny("invalid bearer token")

    def _known(self, header: str | bytes) -> bool:
        value = header.encode() if isinstance(header, str) else header
        if not value.startswith(b"Bearer "):
            return False
        offered = value[len(b"Bearer ") :].strip()
        # Compare against every token so timing does not reveal which one matched.
        return sum(hmac.compare_digest(offered, t) for t in self._tokens) > 0

    async def intercept_service(
        self,
        continuation: Continuation,
        handler_call_details: grpc.HandlerCallDetails,
    ) -> grpc.RpcMethodHandler[Any, Any] | None:
        method = handler_call_details.method or ""
        if method.startswith(self._open):
            return await continuation(handler_call_details)
        header = None
        for key, value in handler_call_details.invocation_metadata or ():
            if key == "authorization":
                header = value
                break
        if header is None:
            return self._missing
        if not self._known(header):
            return self._wrong
        return await continuation(handler_call_details)
