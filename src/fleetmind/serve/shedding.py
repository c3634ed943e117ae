"""Load shedding: refuse a share of new calls while calls wait too long to be taken up.

A Python gRPC server cannot see its own backlog: calls wait in gRPC's C core (and
in the sockets in front of it) until the event loop takes them up one at a time,
and a handler that is running has, by then, already waited. So the server measures
the wait from the outside: a probe calls the server's health service over a private
Unix socket every ``probe_interval_s`` while calls arrive, and the probe's round
trip is the wait a new call meets (it queues in the same core behind the same
callers and is taken up by the same event loop).

While that wait exceeds the target, :meth:`LoadShedder.refuse` answers a share of
new calls at once with ``RESOURCE_EXHAUSTED`` and a pushback (gRPC's
``grpc-retry-pushback-ms``, honoured by gRPC's retry policy and by the fleetmind
SDK; ``Retry-After`` over HTTP). The share grows while the wait exceeds the target
and shrinks while it is under (integral control). A refusal costs a Python server
almost as much CPU as an answer, so the pushback grows with the overload: by Little's
law the wait times the rate of admitted calls is the number of callers waiting, and
the callers already sent away plus those waiting too long, over the refusals that
``refusal_budget`` allows per second, is how long to send the next ones away. At ten
times its capacity the server sends callers away for seconds rather than refusing
each of them again every few milliseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import os
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from grpc import aio
from grpc_health.v1 import health_pb2, health_pb2_grpc

logger = logging.getLogger(__name__)

_OVERLOADED = frozenset(
    {
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.CANCELLED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
    }
)

PUSHBACK_KEY = "grpc-retry-pushback-ms"
"""Trailing metadata key of gRPC's server pushback (milliseconds, a decimal string)."""


def overload_message(pushback_ms: int) -> str:
    """The details of a refusal: what happened and when to come back."""
    return f"server overloaded: calls wait too long to be taken up; retry in {pushback_ms} ms"


@dataclass(frozen=True)
class ShedPolicy:
    """How long a call may wait before new calls are refused, and how they are."""

    max_wait_s: float = 0.1
    """Wait (probe round trip) beyond which a share of new calls is refused."""
    probe_interval_s: float = 0.05
    """Time between probes while calls arrive."""
    gain: float = 0.05
    """Change of the share refused per measurement, per target's worth of excess wait."""
    refusal_budget: float = 0.1
    """Refusals per admitted call the pushback aims to stay under."""
    min_pushback_s: float = 0.05
    max_pushback_s: float = 10.0
    max_share: float = 0.5
    """Largest share of new calls refused."""


class LoadShedder:
    """Decides, per call, whether to admit it; fed wait measurements by a probe."""

    def __init__(
        self,
        policy: ShedPolicy,
        clock: Callable[[], float] = time.monotonic,
        rng: Callable[[], float] = random.random,
    ) -> None:
        self.policy = policy
        self._clock = clock
        self._rng = rng
        self.share = 0.0
        """Share of new calls refused now."""
        self.pushback_s = policy.min_pushback_s
        """Mean pushback given with a refusal now."""
        self.wait_s = 0.0
        """Latest wait measured by the probe."""
        self.admitted_rate = 0.0
        """Admitted calls per second over the last probe interval."""
        self._admitted = 0
        self._since = clock()
        self._away: list[float] = []  # when each caller sent away is due back

    def refuse(self) -> int:
        """0 to admit the call, otherwise the pushback in milliseconds of its refusal."""
        if self.share and self._rng() < self.share:
            pushback = self.pushback_s * (0.5 + self._rng())
            heapq.heappush(self._away, self._clock() + pushback)
            return max(1, round(pushback * 1000))
        self._admitted += 1
        return 0

    def arrivals(self) -> int:
        """Calls admitted since the last :meth:`observe`."""
        return self._admitted

    def observe(self, wait_s: float) -> None:
        """Take a measured wait: adjust the share refused and the pushback.

        The share is integral control on the wait relative to the target (it grows
        while calls wait too long, faster the longer they wait, and shrinks while they
        wait less), because a refusal shortens the wait only once the calls queued in
        front of it have been taken up. The pushback sends callers away long enough
        that refusing them costs about ``refusal_budget`` of the calls admitted: the
        callers already away plus those waiting beyond the target, over the refusals
        the budget allows per second.
        """
        now = self._clock()
        elapsed = max(now - self._since, 1e-3)
        rate = self._admitted / elapsed
        self._admitted, self._since = 0, now
        self.wait_s, self.admitted_rate = wait_s, rate
        away = self._away
        while away and away[0] <= now:
            heapq.heappop(away)
        policy = self.policy
        error = (wait_s - policy.max_wait_s) / policy.max_wait_s
        if rate <= 0 and not self.share:
            return  # idle: nobody to refuse
        step = policy.gain * min(max(error, -1.0), 4.0)
        share = min(policy.max_share, max(0.0, self.share + step))
        self.share = share if share >= 0.005 else 0.0
        if error > 0 and rate > 0:
            excess = (wait_s - policy.max_wait_s) * rate  # callers waiting too long
            wanted = (len(away) + excess) / (policy.refusal_budget * rate)
            self.pushback_s = min(policy.max_pushback_s, max(policy.min_pushback_s, wanted))


class WaitProbe:
    """Measures the wait of a new call: health checks over a private Unix socket.

    :meth:`address` is bound by the server beside its public port. Tokens are checked
    there as on the public port; TLS is not, so the socket lives in a directory only
    the server's user can enter (whoever can enter it could read the server's keys).
    """

    def __init__(self, shedder: LoadShedder, report: Callable[[float], None]) -> None:
        self.shedder = shedder
        self._report = report
        self._dir = tempfile.mkdtemp(prefix="fleetmind-probe-")
        os.chmod(self._dir, 0o700)
        self._task: asyncio.Task[None] | None = None

    @property
    def address(self) -> str:
        return f"unix:{self._dir}/probe.sock"

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="wait-probe")

    async def _run(self) -> None:
        policy = self.shedder.policy
        request = health_pb2.HealthCheckRequest(service="")
        async with aio.insecure_channel(self.address) as channel:
            check: Any = health_pb2_grpc.HealthStub(channel).Check  # type: ignore[attr-defined]
            while True:
                await asyncio.sleep(policy.probe_interval_s)
                if not self.shedder.arrivals() and not self.shedder.share:
                    self._observe(0.0)  # idle: nothing waits
                    continue
                try:
                    await self._measure(check, request)
                except Exception:  # a probe that stops would freeze the share refused
                    logger.exception("wait probe failed; probing again")

    async def _measure(self, check: Any, request: Any) -> None:
        """One probe; while it is still waiting, how long it has waited so far is already
        a wait to act on (a burst is refused within about ``max_wait_s``, not only once
        the probe has waited through it)."""
        policy = self.shedder.policy
        began = time.perf_counter()
        call = asyncio.ensure_future(check(request, timeout=max(1.0, 10 * policy.max_wait_s)))
        try:
            while True:
                done, _ = await asyncio.wait({call}, timeout=policy.max_wait_s)
                if done:
                    break
                self._observe(time.perf_counter() - began)  # at least this long
            call.result()
        except aio.AioRpcError as exc:
            if exc.code() not in _OVERLOADED:
                logger.debug("wait probe failed: %s", exc.code().name)
                return
            # refused or timed out in the queue it measures: at least overloaded
            self._observe(max(time.perf_counter() - began, 2 * policy.max_wait_s))
            return
        finally:
            call.cancel()
        self._observe(time.perf_counter() - began)

    def _observe(self, wait_s: float) -> None:
        shedder = self.shedder
        shedder.observe(wait_s)
        self._report(wait_s)
        if shedder.share and logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "wait %.0f ms at %.0f calls/s: refusing %.0f%%, pushback %.2f s",
                wait_s * 1000,
                shedder.admitted_rate,
                shedder.share * 100,
                shedder.pushback_s,
            )

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        shutil.rmtree(self._dir, ignore_errors=True)
