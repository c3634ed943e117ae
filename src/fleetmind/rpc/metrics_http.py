"""The one way fleetmind serves a Prometheus page: ``/metrics`` over HTTP or HTTPS,
optionally behind a bearer token.

::

    page = MetricsPage(registry, MetricsPageConfig(port=9090, host="10.0.0.5",
                       tls_cert=cert, tls_key=key, tokens=("s3cret",)))
    page.port                      # the bound port (0 picks one)
    ...                            # curl --cacert ca.pem -H 'Authorization: Bearer s3cret' ...
    page.close()

Without a token, every request is answered 401; tokens are compared in constant
time. With TLS, each connection's handshake runs on that connection's own thread,
so a client that never finishes one holds up nobody else.
"""

from __future__ import annotations

import hmac
import logging
import socket
import ssl
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import CollectorRegistry, make_wsgi_app
from prometheus_client.exposition import ThreadingWSGIServer

from fleetmind.core.errors import ConfigError, UnavailableError

logger = logging.getLogger(__name__)

HANDSHAKE_TIMEOUT_S = 10.0
"""Longest a client may take to finish its TLS handshake and send its request."""

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


@dataclass(frozen=True)
class MetricsPageConfig:
    """Where and how a metrics page listens."""

    port: int
    """TCP port; 0 picks a free one."""
    host: str = "0.0.0.0"
    """Interface to bind."""
    tls_cert: Path | None = None
    """PEM certificate chain; with ``tls_key`` the page is served over HTTPS only."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    tokens: tuple[str, ...] = ()
    """Accepted bearer tokens; empty: no token needed."""

    def tls_context(self) -> ssl.SSLContext | None:
        """The server-side TLS context, or None for plain HTTP."""
        if (self.tls_cert is None) != (self.tls_key is None):
            raise ConfigError("metrics TLS needs both a certificate and its key")
        if self.tls_cert is None or self.tls_key is None:
            return None
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        try:
            context.load_cert_chain(self.tls_cert, self.tls_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                f"cannot load metrics TLS certificate {self.tls_cert} / key {self.tls_key}: {exc}"
            ) from exc
        return context


def require_bearer(app: WsgiApp, tokens: Iterable[str]) -> WsgiApp:
    """``app`` behind ``Authorization: Bearer <one of tokens>``; 401 otherwise."""
    expected = tuple(f"Bearer {t}".encode() for t in tokens)
    if not expected:
        raise ConfigError("a bearer-token check needs at least one token")

    def checked(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        offered = str(environ.get("HTTP_AUTHORIZATION", "")).encode("latin-1", "replace")
        # Compare against every token so that timing does not tell which one matched.
        if sum(hmac.compare_digest(offered, token) for token in expected) == 0:
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
            )
            return [b"send header 'Authorization: Bearer <token>'\n"]
        return app(environ, start_response)

    return checked


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:  # base signature
        """No access log on stderr."""


POLL_INTERVAL_S = 0.05
"""How often the page's thread looks for a shutdown: :meth:`MetricsPage.close` waits
up to this long (the standard library's 0.5 s was most of a server's stop)."""


class _PageServer(ThreadingWSGIServer):
    """A threading WSGI server that, given a TLS context, handshakes per connection."""

    tls: ssl.SSLContext | None = None

    def process_request(self, request: Any, client_address: Any) -> None:
        request.settimeout(HANDSHAKE_TIMEOUT_S)
        super().process_request(request, client_address)

    def finish_request(self, request: Any, client_address: Any) -> None:
        if self.tls is None:
            super().finish_request(request, client_address)
            return
        # Runs on the connection's own thread: wrap_socket handshakes here.
        with self.tls.wrap_socket(request, server_side=True) as wrapped:
            super().finish_request(wrapped, client_address)

    def shutdown_request(self, request: Any) -> None:
        if request.fileno() != -1:  # a TLS connection closed itself after wrapping
            super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        logger.debug("metrics request from %s failed", client_address, exc_info=True)


class MetricsPage:
    """``/metrics`` of ``registry`` on a daemon thread, until :meth:`close`."""

    def __init__(self, registry: CollectorRegistry, config: MetricsPageConfig) -> None:
        app: WsgiApp = make_wsgi_app(registry)
        if config.tokens:
            app = require_bearer(app, config.tokens)
        tls = config.tls_context()

        class Server(_PageServer):
            address_family = _family(config.host, config.port)

        Server.tls = tls
        try:
            self._http: WSGIServer = make_server(
                config.host, config.port, app, Server, handler_class=_QuietHandler
            )
        except OSError as exc:
            raise UnavailableError(
                f"cannot serve metrics on {config.host}:{config.port}: {exc.strerror}"
            ) from exc
        self.port = int(self._http.server_address[1])
        self.scheme = "https" if tls is not None else "http"
        self._thread = threading.Thread(
            target=self._http.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_S},
            name="fleetmind-metrics",
            daemon=True,
        )
        self._thread.start()
        logger.info(
            "metrics on %s://%s:%d/metrics%s",
            self.scheme,
            config.host,
            self.port,
            " (bearer token required)" if config.tokens else "",
        )

    def close(self) -> None:
        """Stop serving and release the port."""
        self._http.shutdown()
        self._http.server_close()
        self._thread.join(timeout=5)


def _family(host: str, port: int) -> socket.AddressFamily:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve metrics host {host!r}: {exc.strerror}") from exc
    return infos[0][0]
