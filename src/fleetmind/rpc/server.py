"""The one way fleetmind builds a gRPC server.

:func:`create_server` returns a ``grpc.aio`` server bound to ``address`` (port 0
picks a free port) with explicit message-size limits, keepalive, optional TLS or
mutual TLS, optional bearer-token auth, the standard health service and server
reflection. A server that the network could reach with neither a token nor mutual
TLS is refused unless ``insecure`` is set (:mod:`fleetmind.rpc.exposure`), and then
logged loudly. Starting and stopping stay with the caller::

    health = HealthServicer()
    server, port = create_server("127.0.0.1:0", ServerConfig(), [(servicer, desc)], health)
    await server.start()
    ...
    health.enter_graceful_shutdown()      # probes now see NOT_SERVING
    await server.stop(grace=5.0)          # in-flight calls finish
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from google.protobuf.descriptor import FileDescriptor, ServiceDescriptor
from google.protobuf.descriptor_pool import DescriptorPool
from grpc import aio
from grpc_health.v1 import health, health_pb2
from grpc_reflection.v1alpha import reflection, reflection_pb2

from fleetmind.core.errors import ConfigError, UnavailableError
from fleetmind.rpc.auth import HEALTH_PREFIX, TokenAuthInterceptor
from fleetmind.rpc.exposure import OPEN_WARNING, check_exposure
from fleetmind.rpc.handlers import add_service
from fleetmind.rpc.status import refusing_malformed
from fleetmind.rpc.tls import server_credentials

HealthServicer = health.aio.HealthServicer
"""The standard ``grpc.health.v1`` servicer (asyncio flavour)."""

MIB = 1024 * 1024

log = logging.getLogger(__name__)


@dataclass
class ServerConfig:
    """Transport settings of a fleetmind gRPC server."""

    max_message_bytes: int = 16 * MIB
    """Largest request or response message; bigger ones get RESOURCE_EXHAUSTED."""
    keepalive_time_s: float = 30.0
    """Seconds between keepalive pings on idle connections."""
    keepalive_timeout_s: float = 10.0
    """Seconds to wait for a ping's answer before closing the connection."""
    tls_cert: Path | None = None
    """PEM certificate chain of the server; with ``tls_key`` turns TLS on."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    tls_client_ca: Path | None = None
    """PEM CA whose signed client certificates are required (mutual TLS)."""
    tokens: tuple[str, ...] = ()
    """Accepted bearer tokens; empty turns token authentication off."""
    open_prefixes: tuple[str, ...] = (HEALTH_PREFIX,)
    """Method prefixes reachable without a token (the health service)."""
    insecure: bool = False
    """Listen beyond loopback with neither a token nor mutual TLS (refused otherwise)."""
    reflection: bool = True
    """Serve ``grpc.reflection`` so that grpcurl can list and call methods."""
    max_pending_calls: int | None = None
    """Most calls gRPC's core holds before the Python server takes them up; beyond half
    of it new calls are refused more and more often, beyond it always, at once and in
    C (status ``CANCELLED``, message ``CANCELLED``). Unset: gRPC's own limits (1000
    and 3000), seconds of waiting for a Python server."""
    share_port: bool = False
    """Bind with SO_REUSEPORT, beside other processes serving the same port (the workers
    of one server); otherwise a port already taken fails loudly."""
    extra_options: dict[str, Any] = field(default_factory=dict)
    """Further ``grpc.*`` channel arguments, for tuning."""

    def open_at(self, address: str) -> bool:
        """Whether a server on ``address`` would be open to the network (allowed by
        ``insecure``); ConfigError when it would be and ``insecure`` is not set."""
        mutual_tls = self.tls_cert is not None and self.tls_client_ca is not None
        guarded = bool(self.tokens) or mutual_tls
        return check_exposure(address, guarded=guarded, insecure=self.insecure)

    def options(self) -> list[tuple[str, Any]]:
        """The gRPC channel arguments these settings stand for."""
        if self.max_message_bytes <= 0:
            raise ConfigError(f"max_message_bytes={self.max_message_bytes} must be positive")
        opts: dict[str, Any] = {
            "grpc.max_receive_message_length": self.max_message_bytes,
            "grpc.max_send_message_length": self.max_message_bytes,
            "grpc.keepalive_time_ms": int(self.keepalive_time_s * 1000),
            "grpc.keepalive_timeout_ms": int(self.keepalive_timeout_s * 1000),
            "grpc.keepalive_permit_without_calls": 1,
            "grpc.http2.min_ping_interval_without_data_ms": 5000,
            "grpc.http2.max_pings_without_data": 0,
            # A port already taken must fail loudly, not be silently shared.
            "grpc.so_reuseport": int(self.share_port),
            # gRPC's core takes up only a few new calls per read of a connection; the
            # rest of a busy connection's calls wait unread behind other connections.
            # Taken up at once, every call waits in one first-come-first-served queue,
            # where the inference server's wait probe sees it (measured: the p99 of
            # 2,048 callers on 8 connections halved; docs/serving.md, Overload).
            "grpc.http2.max_requests_per_read": MAX_REQUESTS_PER_READ,
        }
        if self.max_pending_calls is not None:
            if self.max_pending_calls < 2:
                raise ConfigError(f"max_pending_calls={self.max_pending_calls} must be >= 2")
            opts["grpc.server.max_pending_requests"] = self.max_pending_calls // 2
            opts["grpc.server.max_pending_requests_hard_limit"] = self.max_pending_calls
        opts.update(self.extra_options)
        return list(opts.items())


MAX_REQUESTS_PER_READ = 4096
"""New calls gRPC's core takes up per read of one connection."""


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (for a child process to bind)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def create_server(
    address: str,
    config: ServerConfig,
    services: Sequence[tuple[Any, ServiceDescriptor]] = (),
    health_servicer: HealthServicer | None = None,
) -> tuple[aio.Server, int]:
    """A configured, not yet started server and the port it is bound to."""
    open_to_network = config.open_at(address)
    interceptors: list[aio.ServerInterceptor] = []
    if config.tokens:
        interceptors.append(TokenAuthInterceptor(config.tokens, config.open_prefixes))
    server = aio.server(interceptors=interceptors, options=config.options())
    served = []
    for servicer, descriptor in services:
        add_service(server, servicer, descriptor)
        served.append(descriptor)
    # Health and reflection are served with the lenient parser too, so that bytes
    # that do not parse get INVALID_ARGUMENT rather than UNKNOWN and a traceback.
    if health_servicer is not None:
        health_service = health_pb2.DESCRIPTOR.services_by_name["Health"]
        add_service(server, health_servicer, health_service, refusing_malformed)
        served.append(health_service)
    if config.reflection:
        reflection_service = reflection_pb2.DESCRIPTOR.services_by_name["ServerReflection"]
        served.append(reflection_service)
        reflector = reflection.aio.ReflectionServicer(
            [d.full_name for d in served], pool=_reflection_pool(served)
        )
        add_service(server, reflector, reflection_service, refusing_malformed)
    port = _bind(server, address, config)
    if open_to_network:  # never a unix: socket, so HOST:PORT
        log.warning(OPEN_WARNING, f"{address.rpartition(':')[0]}:{port}")
    return server, port


def _reflection_pool(services: Sequence[ServiceDescriptor]) -> DescriptorPool:
    """One pool holding every served file: ours live in private pools, not the default."""
    pool = DescriptorPool()
    added: set[str] = set()

    def add(file: FileDescriptor) -> None:
        if file.name in added:
            return
        for dependency in file.dependencies:
            add(dependency)
        pool.AddSerializedFile(file.serialized_pb)  # type: ignore[no-untyped-call]  # untyped stub
        added.add(file.name)

    for service in services:
        add(service.file)
    return pool


def _bind(server: aio.Server, address: str, config: ServerConfig) -> int:
    if (config.tls_cert is None) != (config.tls_key is None):
        raise ConfigError("TLS needs both --tls-cert and --tls-key")
    if config.tls_client_ca is not None and config.tls_cert is None:
        raise ConfigError("mutual TLS (--tls-client-ca) needs --tls-cert and --tls-key too")
    try:
        if config.tls_cert is not None and config.tls_key is not None:
            creds = server_credentials(config.tls_cert, config.tls_key, config.tls_client_ca)
            port = server.add_secure_port(address, creds)
        else:
            port = server.add_insecure_port(address)
    except RuntimeError as exc:
        raise UnavailableError(f"cannot listen on {address}: {exc}") from exc
    if port == 0:
        raise UnavailableError(f"cannot listen on {address}: address in use or invalid")
    return port


async def mark_serving(
    health_servicer: HealthServicer, names: Sequence[str] = ("",), *, serving: bool = True
) -> None:
    """Report SERVING (or NOT_SERVING) for the server (``""``) and each named service."""
    status = (
        health_pb2.HealthCheckResponse.SERVING
        if serving
        else health_pb2.HealthCheckResponse.NOT_SERVING
    )
    for name in names:
        await health_servicer.set(name, status)
