"""The one way fleetmind dials a gRPC server.

:func:`create_channel` (blocking stubs) and :func:`create_aio_channel`
(``grpc.aio``) return channels with explicit message limits, keepalive, TLS when
asked, and a service config that balances round-robin over every address of the
target and retries ``UNAVAILABLE`` with exponential backoff. Several replicas are
one target::

    channel = create_channel(join_targets(["10.0.0.5:8001", "10.0.0.6:8001"]), ChannelConfig())

Every call still needs its own deadline (``timeout=``): the channel cannot add one.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc import aio

from fleetmind.core.errors import ConfigError
from fleetmind.rpc.tls import channel_credentials

MIB = 1024 * 1024


@dataclass
class ChannelConfig:
    """Transport settings of a fleetmind gRPC client."""

    max_message_bytes: int = 16 * MIB
    """Largest request or response message."""
    max_attempts: int = 5
    """Tries per call (first one included) when the server answers UNAVAILABLE."""
    initial_backoff_s: float = 0.05
    """Wait before the first retry; grows by ``backoff_multiplier`` per retry."""
    max_backoff_s: float = 1.0
    """Longest wait between two retries."""
    backoff_multiplier: float = 2.0
    """Growth factor of the backoff."""
    retry_codes: tuple[str, ...] = ("UNAVAILABLE",)
    """Status codes retried; add ``CANCELLED`` for idempotent calls (a server that is
    shutting down cancels calls it accepted but had not started)."""
    retry_budget_tokens: int | None = None
    """Retry throttling (gRPC's ``retryThrottling``): the channel holds this many tokens,
    each failed attempt takes one, each success gives back ``retry_budget_ratio``, and
    retries stop while half or fewer are left, so that a refusing server is not sent
    every call ``max_attempts`` times. Off when unset."""
    retry_budget_ratio: float = 0.1
    """Tokens a successful call gives back (see ``retry_budget_tokens``)."""
    keepalive_time_s: float = 30.0
    """Seconds between keepalive pings on an idle connection."""
    max_reconnect_backoff_s: float | None = None
    """Longest wait of the channel between two connection attempts (gRPC's default,
    120 s, when None): after a long outage a lower value reconnects sooner."""
    min_reresolve_s: float = 1.0
    """Shortest time between two DNS resolutions of the target (gRPC's default is 30 s).
    A client re-resolves a name when a connection closes; a replica that closes its
    connections after a maximum age (``fleetmind serve --max-connection-age-s``) is
    meant to send its clients to new replicas at that age, which gRPC would otherwise
    hold back until 30 s after the last resolution."""
    own_connections: bool = False
    """Connections of this channel alone: gRPC otherwise shares a connection among the
    channels of a process that have the same target and settings, so a new channel
    would reuse one that a cut link left stalled. A probe of such a link wants its own."""
    tls_ca: Path | None = None
    """PEM CA to trust; setting any TLS field turns TLS on (system roots if ``None``)."""
    tls_cert: Path | None = None
    """PEM client certificate, for mutual TLS."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    tls: bool = False
    """Use TLS even when no TLS file is given (trust the system roots)."""
    tls_server_name: str | None = None
    """Host name to expect in the server certificate, when it differs from the target."""

    def service_config(self) -> str:
        """The JSON service config: round-robin plus retries of ``retry_codes``."""
        if not 1 <= self.max_attempts <= 5:
            raise ConfigError(f"max_attempts={self.max_attempts} must be within 1..5 (gRPC limit)")
        retry = {
            "maxAttempts": self.max_attempts,
            "initialBackoff": f"{self.initial_backoff_s:.3f}s",
            "maxBackoff": f"{self.max_backoff_s:.3f}s",
            "backoffMultiplier": self.backoff_multiplier,
            "retryableStatusCodes": list(self.retry_codes),
        }
        method: dict[str, Any] = {"name": [{}]}
        if self.max_attempts > 1:
            method["retryPolicy"] = retry
        config: dict[str, Any] = {
            "loadBalancingConfig": [{"round_robin": {}}],
            "methodConfig": [method],
        }
        if self.retry_budget_tokens is not None:
            if not 1 <= self.retry_budget_tokens <= 1000 or self.retry_budget_ratio <= 0:
                raise ConfigError(
                    f"retry_budget_tokens={self.retry_budget_tokens} must be within 1..1000 "
                    f"and retry_budget_ratio={self.retry_budget_ratio} above 0"
                )
            config["retryThrottling"] = {
                "maxTokens": self.retry_budget_tokens,
                "tokenRatio": self.retry_budget_ratio,
            }
        return json.dumps(config)

    def options(self) -> list[tuple[str, Any]]:
        """The gRPC channel arguments these settings stand for."""
        opts: list[tuple[str, Any]] = [
            ("grpc.max_receive_message_length", self.max_message_bytes),
            ("grpc.max_send_message_length", self.max_message_bytes),
            ("grpc.keepalive_time_ms", int(self.keepalive_time_s * 1000)),
            ("grpc.enable_retries", 1),
            ("grpc.service_config", self.service_config()),
            ("grpc.dns_min_time_between_resolutions_ms", int(self.min_reresolve_s * 1000)),
        ]
        if self.max_reconnect_backoff_s is not None:
            backoff_ms = max(100, int(self.max_reconnect_backoff_s * 1000))
            opts.append(("grpc.max_reconnect_backoff_ms", backoff_ms))
            opts.append(("grpc.initial_reconnect_backoff_ms", min(1000, backoff_ms)))
            opts.append(("grpc.min_reconnect_backoff_ms", min(1000, backoff_ms)))
        if self.own_connections:
            opts.append(("grpc.use_local_subchannel_pool", 1))
        if self.tls_server_name:
            opts.append(("grpc.ssl_target_name_override", self.tls_server_name))
        return opts

    @property
    def uses_tls(self) -> bool:
        """Whether the channel is encrypted."""
        return self.tls or any(p is not None for p in (self.tls_ca, self.tls_cert, self.tls_key))


def join_targets(targets: Sequence[str]) -> str:
    """One gRPC target for several ``host:port`` replicas (resolved once, now).

    A single target is returned unchanged (DNS names keep re-resolving); several
    become an ``ipv4:``/``ipv6:`` address list that round-robin spreads calls over.
    """
    if not targets:
        raise ConfigError("no target given; pass at least one host:port")
    if len(targets) == 1:
        return targets[0]
    v4: list[str] = []
    v6: list[str] = []
    for target in targets:
        host, _, port = target.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"target {target!r} is not host:port")
        host = host.strip("[]")
        for addr in _resolve(host, int(port)):
            ip = ipaddress.ip_address(addr)
            (v4 if ip.version == 4 else v6).append(
                f"{addr}:{port}" if ip.version == 4 else f"[{addr}]:{port}"
            )
    if v4:
        return "ipv4:" + ",".join(dict.fromkeys(v4))
    return "ipv6:" + ",".join(dict.fromkeys(v6))


def _resolve(host: str, port: int) -> list[str]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigError(f"cannot resolve {host!r}: {exc.strerror}") from exc
    return [str(info[4][0]) for info in infos]


def create_channel(target: str, config: ChannelConfig) -> grpc.Channel:
    """A blocking-API channel to ``target``."""
    if config.uses_tls:
        creds = channel_credentials(config.tls_ca, config.tls_cert, config.tls_key)
        return grpc.secure_channel(target, creds, options=config.options())
    return grpc.insecure_channel(target, options=config.options())


def create_aio_channel(target: str, config: ChannelConfig) -> aio.Channel:
    """An asyncio channel to ``target``."""
    if config.uses_tls:
        creds = channel_credentials(config.tls_ca, config.tls_cert, config.tls_key)
        return aio.secure_channel(target, creds, options=config.options())
    return aio.insecure_channel(target, options=config.options())
