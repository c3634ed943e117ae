"""An edge client that runs each decision where its expected completion time is least.

::

    client = OffloadingClient.connect(Path("runs/small"), ["10.0.0.5:8001"], "cartpole",
                                      EdgeConfig(deadline_s=0.05))
    decision = client.decide(observation)     # .action, .place, .reason, .latency_s
    client.close()

It holds a local agent and one or more remote targets (``fleetmind serve``
replicas). Each place has an E[T] from moving averages of what the client measures
(:mod:`fleetmind.serve.edge_estimates`); a decision runs at the place of least E[T]
that would answer in time. A remote call gets the decision's deadline less room for
the local agent; when it fails or is late the decision runs locally (a fallback, never
a failed decision), and after ``failures_to_down`` such calls in a row the target is
down. A prober thread keeps the estimates of places not in use fresh: every
``idle_probe_s`` it calls a target that is up but not chosen, every ``local_refresh_s``
it times the local agent while decisions run remotely, and every ``probe_interval_s``
it tries a target that is down over a new connection (a link that was cut may have
left the old one stalled), so a healed link is back within about one probe interval.
The prober's calls share the edge's CPU with the local decisions running meanwhile,
which on a weak device makes them look slower than the remote is: the next decision
after a target comes back goes to it (reason ``returned``, still within the deadline
with the local fallback) and its time replaces the prober's estimate.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fleetmind.core.errors import ConfigError
from fleetmind.serve.client import Client
from fleetmind.serve.edge_estimates import LOCAL, Choice, PlaceEstimate, choose
from fleetmind.serve.edge_metrics import EdgeMetrics
from fleetmind.serve.edge_remote import GrpcRemote, LocalAgent, LocalPolicy, Remote

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class EdgeConfig:
    """How an edge client decides."""

    deadline_s: float = 0.1
    """Latest a decision may take; a remote call gets this less the local margin."""
    local_margin: float = 1.5
    """Room kept for a fallback, in multiples of the local E[T]."""
    smoothing: float = 0.05
    """Weight of a new measurement in the moving averages. E[T] is a mean: a long
    memory keeps the rare slow call (a retransmission after a lost packet, a throttled
    CPU) in it, where a short one would forget it and flip between places on noise."""
    memory_s: float = 2.0
    """A measurement weighs at least ``1 - exp(-dt / memory_s)`` (``dt``: seconds since
    the place's previous one), so a probe of an idle place is not drowned by the past."""
    probe_interval_s: float = 0.25
    """How often targets that are down are tried again (over a new connection)."""
    idle_probe_s: float = 1.0
    """How often a target that is up but not chosen is measured. Each probe costs the
    edge a call's worth of CPU; a weak edge pays for it in its own decisions."""
    local_refresh_s: float = 2.0
    """How often the local agent is timed while decisions run remotely."""
    failures_to_down: int = 2
    """Failed or late remote calls in a row after which a target is down."""
    connect_timeout_s: float = 2.0
    """Deadline of the start checks (observation shape, first measurements)."""
    warmup_calls: int = 3
    """Measurements of each place at start."""

    def __post_init__(self) -> None:
        names = ("deadline_s", "probe_interval_s", "idle_probe_s", "local_refresh_s", "memory_s")
        for name in (*names, "connect_timeout_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"{name}={value} must be a positive number of seconds")
        if self.local_margin < 0 or self.failures_to_down < 1 or self.warmup_calls < 1:
            raise ConfigError(
                f"local_margin={self.local_margin} must be >= 0, failures_to_down="
                f"{self.failures_to_down} and warmup_calls={self.warmup_calls} >= 1"
            )


@dataclass(frozen=True)
class EdgeDecision:
    """One decision: the action, where it ran and why, and how long it took."""

    action: np.ndarray
    place: str
    """``local`` or the remote target's name."""
    reason: str
    """``faster``, ``deadline``, ``no_remote`` or ``fallback`` (the remote call failed)."""
    latency_s: float


class OffloadingClient:
    """Decides locally or remotely by E[T], within a deadline (see the module)."""

    def __init__(
        self,
        local: LocalPolicy,
        remotes: Sequence[Remote],
        config: EdgeConfig | None = None,
        metrics: EdgeMetrics | None = None,
        clock: Callable[[], float] = time.monotonic,
        probe: bool = True,
    ) -> None:
        self.config = config or EdgeConfig()
        self.metrics = metrics or EdgeMetrics()
        self._clock = clock
        self._local = local
        self._remotes: list[Remote] = list(remotes)
        self._names = ["local", *(r.name for r in self._remotes)]
        nodes = len(self._names)
        weight = self.config.smoothing
        memory = self.config.memory_s
        self.places = [PlaceEstimate(n, nodes, weight, memory) for n in range(nodes)]
        self.up = [True] + [False] * len(self._remotes)
        self._failures = [0] * nodes
        self._refused: set[int] = set()
        """Targets that serve another observation shape: never tried again."""
        self._checked: set[int] = set()
        self._returned: set[int] = set()
        """Targets back up whose next decision measures them (see the module docs)."""
        """Targets whose observation shape is known to fit."""
        self._observation = np.zeros(local.observation_shape, dtype=np.float32)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        try:
            self._start_checks()
        except BaseException:
            self._close_remotes()
            raise
        self._prober = threading.Thread(target=self._probe_loop, name="edge-prober", daemon=True)
        if probe:
            self._prober.start()

    @classmethod
    def connect(
        cls,
        local_path: Path,
        targets: Sequence[str],
        model: str,
        config: EdgeConfig | None = None,
        *,
        loader: str | None = None,
        metrics: EdgeMetrics | None = None,
        client: Callable[[str], Client] | None = None,
    ) -> OffloadingClient:
        """Load the local agent of ``local_path`` and reach each target's ``model``."""
        if not targets:
            raise ConfigError("give at least one remote target (host:port)")
        make = client or (lambda target: Client(target, max_attempts=1, own_connections=True))
        local = LocalAgent.load(local_path, loader)
        remotes: list[Remote] = []
        try:
            for target in targets:
                remotes.append(GrpcRemote(target, model, make))
        except BaseException:
            for remote in remotes:
                remote.close()
            raise
        return cls(local, remotes, config, metrics)

    def _start_checks(self) -> None:
        """Time the local agent; check and time each target, or start it down. The first
        call of each is not counted (a cold first forward or connection is no measure)."""
        self._local.act(self._observation)
        for _ in range(self.config.warmup_calls):
            self._run_local(self._observation)
        timeout = self.config.connect_timeout_s
        for node, remote in enumerate(self._remotes, start=1):
            try:
                shape = remote.observation_shape(timeout)
            except Exception as exc:  # any failure: start on local
                logger.warning(
                    "remote %s is unreachable at start (%s); deciding locally until it answers",
                    remote.name, exc,
                )  # fmt: skip
                self._set_up(node, False)
                continue
            if shape != self._local.observation_shape:
                raise ConfigError(_shape_message(remote.name, shape, self._local.observation_shape))
            self._checked.add(node)
            self._set_up(node, self._measure_remote(node, fresh=True))

    def decide(self, observation: np.ndarray) -> EdgeDecision:
        """The action for one observation, from the place of least E[T] in time."""
        start = self._clock()
        obs = np.asarray(observation, dtype=np.float32)
        if obs.shape != self._local.observation_shape or not np.isfinite(obs).all():
            raise ConfigError(
                f"observation of shape {list(obs.shape)} (finite: {bool(np.isfinite(obs).all())})"
                f" does not fit the local agent's {list(self._local.observation_shape)}"
            )
        self._observation = obs
        with self._lock:
            choice = choose(self.places, self.up, self.config.deadline_s, self.config.local_margin)
            if self._returned:
                back = self._returned.pop()
                if self.up[back] and choice.remote_timeout_s > 0:
                    choice = Choice(back, "returned", choice.remote_timeout_s)
        action, node, reason = self._run(choice, obs)
        latency = self._clock() - start
        place = self._names[node]
        self.metrics.decided(place, reason, latency)
        return EdgeDecision(action, place, reason, latency)

    def _run(self, choice: Choice, obs: np.ndarray) -> tuple[np.ndarray, int, str]:
        if choice.node != LOCAL:
            fresh = choice.reason == "returned"
            action = self._call_remote(choice.node, obs, choice.remote_timeout_s, fresh=fresh)
            if action is not None:
                return action, choice.node, choice.reason
            return self._run_local(obs), LOCAL, "fallback"
        return self._run_local(obs), LOCAL, choice.reason

    def _run_local(self, obs: np.ndarray) -> np.ndarray:
        start = self._clock()
        action = self._local.act(obs)
        self._record(LOCAL, self._clock() - start, 0.0)
        return action

    def _call_remote(
        self, node: int, obs: np.ndarray, timeout_s: float, *, fresh: bool = False
    ) -> np.ndarray | None:
        """The target's action, or None (counted as a fallback) when it failed or was late."""
        remote = self._remotes[node - 1]
        start = self._clock()
        try:
            answer = remote.act(obs, timeout_s)
        except Exception as exc:  # any failure: decide locally
            elapsed = self._clock() - start
            cause = "late" if elapsed >= 0.9 * timeout_s else "failed"
            self.metrics.fallbacks.labels(remote.name, cause).inc()
            self._failures[node] += 1
            if self.up[node] and self._failures[node] >= self.config.failures_to_down:
                logger.warning("remote %s is down (%s); deciding locally", remote.name, exc)
                self._set_up(node, False)
            return None
        total = self._clock() - start
        self._failures[node] = 0
        self._record(node, answer.server_s, total - answer.server_s, fresh=fresh)
        return answer.action

    def _record(
        self, node: int, compute_s: float, transfer_s: float, *, fresh: bool = False
    ) -> None:
        with self._lock:
            place = self.places[node]
            place.record(compute_s, transfer_s, self._clock(), fresh=fresh)
        rtt = place.transfer.value if node != LOCAL else None
        self.metrics.estimate(self._names[node], place.expected_s, rtt)

    def _measure_remote(self, node: int, *, fresh: bool) -> bool:
        """Warm up and time a target; whether it answered every call."""
        with contextlib.suppress(Exception):  # a failure shows in the calls below
            self._remotes[node - 1].act(self._observation, self.config.connect_timeout_s)
        for i in range(self.config.warmup_calls):
            timeout = self.config.connect_timeout_s
            if self._call_remote(node, self._observation, timeout, fresh=fresh and i == 0) is None:
                return False
        return True

    def _set_up(self, node: int, up: bool) -> None:
        self.up[node] = up
        self._failures[node] = 0
        self.metrics.link_up.labels(self._names[node]).set(1.0 if up else 0.0)

    def _probe_loop(self) -> None:
        while not self._stop.wait(self.config.probe_interval_s):
            try:
                self.probe_once()
            except Exception:  # a prober must outlive any single failure
                logger.exception("edge prober failed; it goes on")

    def probe_once(self) -> None:
        """Measure the places not in use; try the targets that are down again."""
        now = self._clock()
        obs = self._observation
        for node in range(1, len(self.places)):
            if self._stop.is_set():
                return
            if node in self._refused:
                continue
            if not self.up[node]:
                self._reconnect(node, obs)
            elif now - self.places[node].measured_at >= self.config.idle_probe_s:
                self._call_remote(node, obs, self.config.deadline_s)
        if now - self.places[LOCAL].measured_at >= self.config.local_refresh_s:
            self._run_local(obs)

    def _reconnect(self, node: int, obs: np.ndarray) -> None:
        """Try a down target over a new connection; adopt it when it answers."""
        old = self._remotes[node - 1]
        fresh = old.reconnected()
        try:
            if node not in self._checked:  # unreachable at start: check it now
                shape = fresh.observation_shape(self.config.probe_interval_s)
                if shape != self._local.observation_shape:
                    self._refused.add(node)
                    message = _shape_message(fresh.name, shape, self._local.observation_shape)
                    logger.error("%s; it is not used", message)
                    fresh.close()
                    return
                self._checked.add(node)
            fresh.act(obs, self.config.probe_interval_s)
        except Exception:  # still down
            fresh.close()
            return
        self._remotes[node - 1] = fresh
        old.close()
        if self._measure_remote(node, fresh=True):
            logger.info("remote %s answers again; it is a candidate once more", fresh.name)
            self._set_up(node, True)
            with self._lock:
                self._returned.add(node)

    def close(self) -> None:
        """Stop the prober and close every connection."""
        self._stop.set()
        if self._prober.is_alive():
            self._prober.join(timeout=5)
        self._close_remotes()

    def _close_remotes(self) -> None:
        for remote in self._remotes:
            remote.close()

    def __enter__(self) -> OffloadingClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _shape_message(name: str, remote: tuple[int, ...], local: tuple[int, ...]) -> str:
    return (
        f"remote {name} takes observations of shape {list(remote)} but the local agent takes "
        f"{list(local)}; serve a model of the same observation space"
    )
