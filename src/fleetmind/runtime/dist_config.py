"""Settings of distributed training: the launcher, the learner service, the actors.

``DistConfig`` adds the ``--actors/--mode/--learners/--max-policy-lag/--metrics-port``
options to ``fleetmind train``; ``LearnerConfig`` and ``ActorConfig`` are the
``fleetmind learner`` and ``fleetmind actor`` options. Addresses, TLS files and the
auth token also come from ``FLEETMIND_*`` environment variables
(:func:`apply_env`), so a container needs no flags.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal

from fleetmind.config import coerce
from fleetmind.core.errors import ConfigError

ENV_PREFIX = "FLEETMIND_"
"""Environment variables ``FLEETMIND_<FIELD>`` fill fields not given as flags."""


@dataclass
class DistConfig:
    """How ``fleetmind train`` spreads training over processes."""

    actors: int = 0
    """Actor processes to launch; 0 trains in this one process."""
    mode: Literal["sync", "async"] = "sync"
    """sync: on-policy (PPO, MAPPO, IPPO), every update on current-version data; async:
    V-trace (IMPALA, team-impala)."""
    learners: int = 1
    """Learner processes that all-reduce gradients (torch.distributed, gloo on CPU)."""
    max_policy_lag: int | None = None
    """async: drop batches whose policy is more than this many versions old."""
    metrics_port: int | None = None
    """Serve Prometheus metrics of the learner on this port."""
    sync_timeout_s: float = 10.0
    """sync: longest wait for the slowest live actor before updating without it."""
    actor_timeout_s: float = 5.0
    """An actor silent for this long counts as gone."""
    queue_chunks: int = 64
    """async: chunks buffered at the learner before actors are slowed down."""
    collective_timeout_s: float = 300.0
    """Several learners: longest wait for the others (rendezvous or one update) before
    the run stops."""

    def validate(self) -> None:
        """Raise ConfigError for values outside their domain."""
        if self.actors < 0:
            raise ConfigError(f"--actors must be >= 0, got {self.actors}")
        if self.learners < 1:
            raise ConfigError(f"--learners must be >= 1, got {self.learners}")
        if self.learners > 1 and self.actors < self.learners:
            raise ConfigError(
                f"--learners {self.learners} needs at least {self.learners} actors (one or "
                f"more per learner), got --actors {self.actors}"
            )
        if self.max_policy_lag is not None and self.max_policy_lag < 0:
            raise ConfigError("--max-policy-lag must be >= 0")
        if self.metrics_port is not None and not 0 <= self.metrics_port < 65536:
            raise ConfigError(f"--metrics-port {self.metrics_port} is not a port")
        for name in ("sync_timeout_s", "actor_timeout_s", "collective_timeout_s"):
            if not getattr(self, name) > 0:  # NaN too
                raise ConfigError(f"--{name.replace('_', '-')} must be positive")
        if self.queue_chunks <= 0:
            raise ConfigError("--queue-chunks must be positive")


SYNC_ALGOS = ("ppo", "mappo", "ippo")
"""On-policy algorithms: they train with actors in ``--mode sync``."""
ASYNC_ALGOS = ("impala", "team-impala")
"""Off-policy (V-trace) algorithms: they train with actors in ``--mode async``."""
ACTOR_ALGOS = SYNC_ALGOS + ASYNC_ALGOS
"""Algorithms whose learner has a network to broadcast, so actors can train with them."""
ASYNC_TWIN = {"ppo": "impala", "mappo": "team-impala", "ippo": "team-impala"}
"""The V-trace algorithm that trains what an on-policy one does, in ``--mode async``."""


def check_mode(name: str, mode: str) -> None:
    """ConfigError when algorithm ``name`` cannot train with actors in ``mode``."""
    name = name.lower()
    if mode == "async" and name in ASYNC_TWIN:
        twin = ASYNC_TWIN[name]
        raise ConfigError(
            f"--algo {name} trains on-policy: use --mode sync, or --algo {twin} (V-trace) "
            "for --mode async"
        )
    if mode == "async" and name not in ASYNC_ALGOS:
        raise ConfigError(
            f"--mode async learns off-policy with V-trace: pass --algo impala (a single agent) "
            f"or --algo team-impala (a team), not {name}"
        )
    if mode == "sync" and name in ASYNC_ALGOS:
        raise ConfigError(f"--algo {name} trains with --mode async")


def check_dist(name: str, dist: DistConfig, learners: int | None = None) -> None:
    """ConfigError when algorithm ``name``, the mode and the learners do not fit together.

    ``learners``: the group size when it does not come from ``dist`` (torchrun's).
    Checked before anything starts, so a bad combination creates no run directory.
    """
    dist.validate()
    name = name.lower()
    learners = dist.learners if learners is None else learners
    check_mode(name, dist.mode)
    if learners > 1 and name not in ACTOR_ALGOS:
        raise ConfigError(
            "--learners > 1 shares PPO, MAPPO or IPPO (--mode sync) or IMPALA or team-impala "
            f"(--mode async) updates; --algo {name} trains with one learner"
        )
    if name not in ACTOR_ALGOS:
        raise ConfigError(
            f"--algo {name} cannot train with actors (its learner has no network to send "
            f"them): use --actors 0, or one of {', '.join(ACTOR_ALGOS)}"
        )


@dataclass
class TransportConfig:
    """TLS and token settings shared by the learner and actor commands."""

    tls_cert: Path | None = None
    """PEM certificate (learner: server cert; actor: client cert for mutual TLS)."""
    tls_key: Path | None = None
    """PEM private key of ``tls_cert``."""
    tls_ca: Path | None = None
    """PEM CA (actor: CA that signed the learner; learner: CA of client certs)."""
    token_file: Path | None = None
    """File with the bearer token(s), one per line."""
    token: str | None = None
    """The bearer token itself (prefer FLEETMIND_TOKEN or --token-file)."""
    tls_server_name: str | None = None
    """actor: host name to expect in the learner's certificate."""


@dataclass
class ActorConfig(TransportConfig):
    """One actor process (``fleetmind actor``)."""

    learner: str = ""
    """Learner address: host:port or unix:PATH."""
    actor_id: str = ""
    """Stable name of this actor (default: host-pid)."""
    env_id: str = ""
    """Environment this actor expects; empty takes whatever the learner trains."""
    envs: int = 8
    """Environment copies this actor steps."""
    backoff_initial_s: float = 0.1
    """First reconnect wait; doubles per failure up to backoff_max_s, with full jitter."""
    backoff_max_s: float = 5.0
    """Longest reconnect wait."""
    give_up_after_s: float | None = None
    """Exit after this long without reaching the learner (default: retry forever)."""
    rpc_timeout_s: float = 30.0
    """Deadline of each call."""
    heartbeat_s: float = 1.0
    """Seconds between heartbeats."""
    push_queue: int = 1
    """Async mode: finished chunks that may wait while another is pushed from a sender
    thread (the actor steps on meanwhile); 0 pushes in the actor's loop, one chunk at a
    time. Sync mode sends chunks up its exchange stream instead."""

    def validate(self) -> None:
        """Raise ConfigError for values outside their domain."""
        if self.push_queue < 0:
            raise ConfigError(f"--push-queue must be 0 or more, got {self.push_queue}")
        if not self.learner:
            raise ConfigError("the learner address is required: --learner HOST:PORT")
        if not self.actor_id:
            import socket

            self.actor_id = f"{socket.gethostname()}-{os.getpid()}"
        if self.envs <= 0:
            raise ConfigError(f"--envs must be positive, got {self.envs}")
        for name in ("backoff_initial_s", "backoff_max_s", "rpc_timeout_s", "heartbeat_s"):
            if not getattr(self, name) > 0:  # NaN too
                raise ConfigError(f"--{name.replace('_', '-')} must be positive")


def apply_env(config: Any, given: set[str], environ: dict[str, str] | None = None) -> Any:
    """Fill fields of ``config`` not in ``given`` from ``FLEETMIND_<FIELD>`` variables."""
    import typing

    env = os.environ if environ is None else environ
    hints = typing.get_type_hints(type(config))
    for f in fields(config):
        key = ENV_PREFIX + f.name.upper()
        if f.name in given or key not in env:
            continue
        setattr(config, f.name, coerce(env[key], hints[f.name], key))
    return config


def read_token(config: TransportConfig) -> str | None:
    """The token from ``token`` or the first line of ``token_file``."""
    if config.token:
        return config.token
    if config.token_file is not None:
        from fleetmind.rpc.auth import read_tokens

        return read_tokens(config.token_file)[0]
    return None


@dataclass
class LearnerServeConfig(TransportConfig):
    """Where and how ``fleetmind learner`` listens."""

    listen: str = "0.0.0.0:50051"
    """Address to serve on: HOST:PORT (port 0 picks one) or unix:PATH."""
    max_message_mb: int = 16
    """Largest message accepted, in MiB; bigger ones get RESOURCE_EXHAUSTED."""
    metrics_host: str | None = None
    """Interface of the metrics page (--metrics-port; default: the host of --listen,
    127.0.0.1 for a unix socket)."""
    metrics_tls_cert: Path | None = None
    """PEM certificate chain of the metrics page; with --metrics-tls-key serves HTTPS."""
    metrics_tls_key: Path | None = None
    """PEM private key of --metrics-tls-cert."""
    metrics_token_file: Path | None = None
    """File of bearer tokens, one per line, for the metrics page; without one a scrape
    gets 401. Unset: the page is open to whoever reaches it."""
    insecure: bool = False
    """Listen beyond loopback with neither a token nor mutual TLS: anyone who reaches the
    port may read the config and weights and push data (refused without this flag)."""

    def metrics_page(self, port: int, listen: str) -> Any:
        """The :class:`fleetmind.rpc.metrics_http.MetricsPageConfig` of these settings."""
        from fleetmind.rpc.auth import read_tokens
        from fleetmind.rpc.metrics_http import MetricsPageConfig
        from fleetmind.runtime.metrics import listen_host

        if (self.metrics_tls_cert is None) != (self.metrics_tls_key is None):
            raise ConfigError("metrics TLS needs both --metrics-tls-cert and --metrics-tls-key")
        tokens = read_tokens(self.metrics_token_file) if self.metrics_token_file else ()
        return MetricsPageConfig(
            port=port,
            host=self.metrics_host or listen_host(listen),
            tls_cert=self.metrics_tls_cert,
            tls_key=self.metrics_tls_key,
            tokens=tokens,
        )

    def server_config(self) -> Any:
        """The :class:`fleetmind.rpc.ServerConfig` of these settings."""
        from fleetmind.rpc.auth import read_tokens
        from fleetmind.rpc.server import ServerConfig

        tokens: tuple[str, ...] = ()
        if self.token:
            tokens = (self.token,)
        elif self.token_file is not None:
            tokens = read_tokens(self.token_file)
        if self.max_message_mb <= 0:
            raise ConfigError(f"--max-message-mb must be positive, got {self.max_message_mb}")
        return ServerConfig(
            max_message_bytes=self.max_message_mb * 1024 * 1024,
            tls_cert=self.tls_cert,
            tls_key=self.tls_key,
            tls_client_ca=self.tls_ca,
            tokens=tokens,
            insecure=self.insecure,
        )
