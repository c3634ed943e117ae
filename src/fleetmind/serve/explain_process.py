"""The explainer process: integrated gradients in a low-priority child of the server.

An integral takes tens of milliseconds of torch per row; on a thread of the server
it would hold the GIL the event loop needs and share the CPU as an equal. So each
server process computes its explanations in one child process of its own, started
with the first explained request (a server that never explains starts none),
``nice``-d by :data:`NICE` (and in Linux's SCHED_IDLE class) and limited to one torch
thread, so the OS scheduler prefers the serving process whenever both want a core.
SCHED_IDLE alone is not enough: a serving thread that becomes runnable while another
serving thread runs does not preempt the explainer when the CPU is handed on, and
then waits until the kernel's next tick (measured: 4 ms). So the child also gives the
CPU up (``sched_yield``) before every evaluation of the policy in an integral;
measured, this took a lone plain caller's p99 beside explanations from about 3x to
about 1.5x its p99 alone (BENCHMARKS.md)::

    process = ExplainProcess()
    key = process.register()
    attributions = await process.attribute(key, agent, rows)  # [B, *obs_shape] FP32
    await process.forget(key)                                 # the version is unloaded
    await process.close()                                     # the server stops

The child gets each agent once (pickled over the pipe with its first request) and
then only rows; it answers attributions or an error message. One request is on the
pipe at a time, and a caller that gives up (deadline) leaves it to finish, so
replies never cross. If the child dies, the request it was computing fails with
``UNAVAILABLE`` and the next one starts a new child; plain requests never touch it.
The child exits when the server stops, or by itself when its pipe closes (the
server process died).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import logging
import multiprocessing
import os
import pickle
import signal
import threading
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

import numpy as np

from fleetmind.core.agent import Agent
from fleetmind.core.errors import FleetmindError, InvalidInputError, UnavailableError

logger = logging.getLogger(__name__)

NICE = 10
"""How much lower the child's scheduling priority is than the server's."""
STOP_S = 5.0
"""How long :meth:`ExplainProcess.close` waits for the child before killing it."""


class ExplainProcess:
    """The parent's side of one explainer child (started lazily, restarted if it dies)."""

    def __init__(self, nice: int = NICE) -> None:
        self.nice = nice
        self._keys = itertools.count(1)
        self._process: BaseProcess | None = None
        self._conn: Connection | None = None
        self._sent: set[int] = set()
        """Keys whose agent the running child holds."""
        self._lock: asyncio.Lock | None = None
        self._io = threading.Lock()
        """Held while a thread uses the pipe or starts or stops the child."""
        self._closed = False

    @property
    def pid(self) -> int | None:
        """The running child's process id (None before the first explanation)."""
        return self._process.pid if self._process is not None else None

    def register(self) -> int:
        """A key for one agent (one model version) to explain."""
        return next(self._keys)

    async def attribute(self, key: int, agent: Agent, rows: np.ndarray) -> np.ndarray:
        """The attributions of ``rows`` by ``agent`` (known as ``key``), from the child."""
        task = asyncio.ensure_future(self._call(("explain", key, agent, rows)))
        task.add_done_callback(_retrieve)
        # a caller that gives up leaves the exchange to finish, so replies never cross
        reply: np.ndarray = await asyncio.shield(task)
        return reply

    async def forget(self, key: int) -> None:
        """Let the child drop the agent of ``key`` (its model version is unloaded)."""
        if key in self._sent and not self._closed:
            with contextlib.suppress(FleetmindError):
                await self._call(("forget", key))
        self._sent.discard(key)

    async def close(self) -> None:
        """Stop the child (if any); later explanations fail with ``UNAVAILABLE``."""
        self._closed = True
        await asyncio.to_thread(self._stop)

    async def _call(self, message: tuple[Any, ...]) -> Any:
        if self._lock is None:
            self._lock = asyncio.Lock()
        async with self._lock:
            if self._closed:
                raise UnavailableError("the server is stopping; it explains nothing more")
            return await asyncio.to_thread(self._exchange, message)

    def _exchange(self, message: tuple[Any, ...]) -> Any:
        """Send one message and wait for its reply (blocking; on a worker thread)."""
        with self._io:
            if self._closed:
                raise UnavailableError("the server is stopping; it explains nothing more")
            conn = self._ensure_started()
            if message[0] == "explain":
                message = ("explain", message[1], self._agent_bytes(*message[1:3]), message[3])
            try:
                conn.send(message)
            except OSError as exc:
                raise self._died("before it got the request") from exc
            if message[0] == "explain":
                self._sent.add(message[1])
            try:
                status, value = conn.recv()
            except (EOFError, OSError) as exc:
                raise self._died("while computing the attributions") from exc
        if status == "invalid":
            raise InvalidInputError(value)
        if status == "error":
            raise FleetmindError(f"computing the attributions failed: {value}")
        return value

    def _agent_bytes(self, key: int, agent: Agent) -> bytes | None:
        """The pickled agent, or None when the child already holds it.

        Plain pickle, not the pipe's own: that one would move torch tensors into
        memory shared with the child, which then changes the served parameters.
        """
        if key in self._sent:
            return None
        try:
            return pickle.dumps(agent, protocol=pickle.HIGHEST_PROTOCOL)
        except (pickle.PicklingError, TypeError, AttributeError) as exc:
            raise FleetmindError(
                f"this model cannot be sent to the explainer process: {exc!r}"
            ) from exc

    def _ensure_started(self) -> Connection:
        if self._process is not None and self._conn is not None and self._process.is_alive():
            return self._conn
        self._reap()
        context = multiprocessing.get_context("spawn")
        parent_end, child_end = context.Pipe()
        process = context.Process(
            target=explain_main,
            args=(child_end, self.nice),
            name="fleetmind-explainer",
            daemon=True,
        )
        process.start()
        child_end.close()
        self._process, self._conn, self._sent = process, parent_end, set()
        logger.info("explainer process started (pid %s, nice +%d)", process.pid, self.nice)
        return parent_end

    def _died(self, when: str) -> UnavailableError:
        code = self._reap()
        logger.warning("the explainer process died %s (exit code %s)", when, code)
        return UnavailableError(
            f"the explainer process died {when} (exit code {code}); retry: the next "
            "explained request starts a new one (requests without 'explain' are unaffected)"
        )

    def _reap(self) -> int | None:
        """Forget the child, waiting for it to exit (no zombie); its exit code."""
        process, conn = self._process, self._conn
        self._process, self._conn, self._sent = None, None, set()
        if conn is not None:
            conn.close()
        if process is None:
            return None
        process.join(STOP_S)
        if process.is_alive():
            process.kill()
            process.join()
        code = process.exitcode
        process.close()
        return code

    def _stop(self) -> None:
        """Ask the child to exit, kill it if it does not in time (blocking)."""
        if not self._io.acquire(timeout=0.1):  # busy with an integral (or starting)
            process = self._process
            if process is not None:
                with contextlib.suppress(ValueError):  # ValueError: reaped meanwhile
                    process.terminate()  # the request it computes gets UNAVAILABLE
            self._io.acquire()
        try:
            if self._conn is not None:
                with contextlib.suppress(OSError):
                    self._conn.send(None)
            self._reap()
        finally:
            self._io.release()


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark the exception of an exchange whose caller gave up as seen."""
    if not task.cancelled():
        task.exception()


# --- the child ------------------------------------------------------------------------


def _idle_class() -> None:
    """Linux's SCHED_IDLE where the OS has it: below even nice 19 (weight 3 against 15),
    and a core running only such work counts as idle when a serving thread wakes up."""
    idle = getattr(os, "SCHED_IDLE", None)
    if idle is None:
        return
    try:
        os.sched_setscheduler(0, idle, os.sched_param(0))
    except OSError as exc:  # a container may forbid it: nice alone still applies
        logger.warning("explainer stays at nice +%d: SCHED_IDLE refused (%s)", NICE, exc)


def _cache_quadrature() -> None:
    """Compute the Gauss-Legendre points of an integral once per step count.

    Captum asks numpy for the points and weights twice per integral, and numpy
    computes them anew each time: half the CPU time of a one-row explanation (1.5 of
    3 ms here). The cache (of a pure function) lives in this process alone.
    """
    legendre = np.polynomial.legendre
    if not hasattr(legendre.leggauss, "cache_info"):
        cached = functools.lru_cache(maxsize=8)(legendre.leggauss)
        setattr(legendre, "leggauss", cached)  # noqa: B010 (numpy declares it Final)


def explain_main(conn: Connection, nice: int) -> None:
    """Entry point of the explainer process: answer requests until told to stop or the
    pipe closes."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the server decides when this stops
    os.nice(nice)
    _idle_class()
    import torch

    from fleetmind.serve.attribution import Attributor

    torch.set_num_threads(1)
    _cache_quadrature()
    attributors: dict[int, Attributor] = {}
    while True:
        try:
            message = conn.recv()
        except (EOFError, OSError):
            return  # the server process is gone
        if message is None:
            return
        try:
            conn.send(_answer(message, attributors))
        except (EOFError, OSError):
            return


def _answer(message: tuple[Any, ...], attributors: dict[int, Any]) -> tuple[str, Any]:
    from fleetmind.serve.attribution import Attributor

    if message[0] == "forget":
        attributors.pop(message[1], None)
        return ("ok", None)
    _, key, agent, rows = message
    try:
        if agent is not None:
            made = Attributor.of(pickle.loads(agent))  # from the server process, not the network
            if isinstance(made, str):
                return ("invalid", made)
            attributors[key] = made
        return ("ok", attributors[key].attribute(rows, pause=os.sched_yield).attributions)
    except InvalidInputError as exc:
        return ("invalid", str(exc))
    except Exception as exc:  # the caller gets the message; the child keeps serving
        logger.exception("explanation failed")
        return ("error", f"{type(exc).__name__}: {exc}")
