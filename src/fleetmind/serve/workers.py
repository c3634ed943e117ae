"""``fleetmind serve --workers N``: N server processes on one port, under one parent.

Python serves gRPC on one core per process, so one process leaves the other cores
of a node idle. The parent here runs N workers, each a full :class:`InferenceServer`
(its own models, batchers and event loop) bound to the same port with
SO_REUSEPORT, so the kernel spreads new connections over them. The parent:

1. checks that no other program holds the port and keeps holding it (a socket
   bound with SO_REUSEPORT that never listens), so a port taken by another program
   is one clear error and not a restart loop;
2. starts the workers (fresh interpreters) and waits until every one has loaded
   its models and listens; a worker that cannot fails the whole start, naming the
   worker and why;
3. then tells each to report SERVING: health and ServerReady say ready only once
   every worker is (a worker answers inference calls as soon as it listens);
4. serves one ``/metrics`` page that sums the workers (``prometheus_client``'s
   multiprocess mode);
5. replaces a worker that dies (the other workers' callers see nothing; the dead
   worker's callers reconnect to a live one), backing off while replacements fail;
6. on SIGTERM or SIGINT, has every worker drain its in-flight calls, then exits 0.

Each worker rescans the model folder itself, so a new checkpoint reaches all of
them. A worker's logs name it (``worker 2``) and it finds its index in
``FLEETMIND_WORKER``, for custom loaders.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from pathlib import Path
from typing import Any

from fleetmind.core.errors import CheckpointError, ConfigError
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.ports import reserve_ports

logger = logging.getLogger(__name__)

WORKER_ENV = "FLEETMIND_WORKER"
"""Set in each worker process to its index (0 .. N-1)."""
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where ``prometheus_client`` in the workers writes the metrics the parent sums."""
MAX_BACKOFF_S = 30.0
"""Longest pause between attempts to replace a worker that keeps failing to start."""
STOP_MARGIN_S = 15.0
"""How much longer than ``--grace-s`` the parent waits for a draining worker."""

_SERVE = "serve"
"""Parent to worker: every worker is ready, report SERVING."""


@dataclass
class _Worker:
    index: int
    process: BaseProcess
    conn: Connection
    """The parent's end of the pipe to this worker."""
    started: float
    ready: bool = False


class WorkerPool:
    """The parent of ``count`` workers serving ``path`` as ``config`` says."""

    def __init__(self, path: Path, config: ServeConfig, count: int) -> None:
        config.validate()
        if count < 1:
            raise ConfigError(f"workers={count} must be >= 1")
        self.path = path
        self.config = config
        self.count = count
        self.port: int | None = None
        self.http_port: int | None = None
        self._workers: dict[int, _Worker] = {}
        self._failures: dict[int, int] = {}
        """Replacements of a worker that failed in a row (reset once one is ready)."""
        self._due: dict[int, float] = {}
        """Workers to start again, and from when."""
        self._context = multiprocessing.get_context("spawn")
        self._signalled: int | None = None
        self._log_level = logging.getLogger().getEffectiveLevel()

    def run(self) -> int:
        """Serve until SIGTERM or SIGINT; returns the exit code (0 after a drain)."""
        from fleetmind.serve.server import metrics_page_config

        keepers = reserve_ports(self.config.host, (self.config.port, self.config.http_port))
        self.port = int(keepers[0].getsockname()[1])
        if len(keepers) > 1:  # the HTTP/REST port, shared the same way
            self.http_port = int(keepers[1].getsockname()[1])
        wake_read, wake_write = socket.socketpair()
        wake_read.setblocking(False)
        wake_write.setblocking(False)
        previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
        old_wakeup = signal.set_wakeup_fd(wake_write.fileno(), warn_on_full_buffer=False)
        for sig in previous:
            signal.signal(sig, self._on_signal)
        page = None
        try:
            with tempfile.TemporaryDirectory(prefix="fleetmind-serve-metrics-") as folder:
                os.environ[MULTIPROC_ENV] = folder
                if self.config.metrics_port is not None:
                    from fleetmind.rpc.metrics_http import MetricsPage
                    from fleetmind.serve.metrics import shared_registry

                    page = MetricsPage(
                        shared_registry(Path(folder)),
                        metrics_page_config(self.config, self.config.metrics_port),
                    )
                try:
                    if self._start_all(wake_read):
                        self._supervise(wake_read, Path(folder))
                finally:
                    self._stop_all()
                    if page is not None:
                        page.close()
                    os.environ.pop(MULTIPROC_ENV, None)
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            wake_read.close()
            wake_write.close()
            for reserved in keepers:
                reserved.close()
        return 0

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._signalled is None:
            self._signalled = signum

    def _spawn(self, index: int) -> None:
        parent_end, child_end = self._context.Pipe()
        config = replace(
            self.config,
            port=self.port or 0,
            http_port=self.http_port,
            metrics_port=None,
            workers=None,
        )
        process = self._context.Process(
            target=worker_main,
            args=(index, self.path, config, child_end, self._log_level),
            name=f"fleetmind-serve-worker-{index}",
        )
        process.start()
        child_end.close()
        self._workers[index] = _Worker(index, process, parent_end, time.monotonic())
        logger.info("worker %d started (pid %s)", index, process.pid)

    def _start_all(self, wake: socket.socket) -> bool:
        """Start every worker and wait until all are ready (False: a signal came first)."""
        for index in range(self.count):
            self._spawn(index)
        while not all(w.ready for w in self._workers.values()):
            if self._signalled is not None:
                return False
            events = self._events(wake, timeout=None)
            for worker, event in events:
                if event == "ready":
                    worker.ready = True
            failed = [(w, e) for w, e in events if e.startswith("failed: ")]
            failed += [(w, e) for w, e in events if e.startswith("exited: ")]
            if failed:
                worker, event = failed[0]
                reason = event.partition(": ")[2]
                raise CheckpointError(f"worker {worker.index} could not start: {reason}")
        for worker in self._workers.values():
            worker.conn.send(_SERVE)
        logger.info(
            "serving %s on %s:%d (port %d) with %d workers",
            self.path,
            self.config.host,
            self.port,
            self.port,
            self.count,
        )
        if self.http_port is not None:
            logger.info(
                "HTTP/REST on %s:%d (http port %d)", self.config.host, *[self.http_port] * 2
            )
        return True

    def _events(self, wake: socket.socket, timeout: float | None) -> list[tuple[_Worker, str]]:
        """What the workers said or did: ``ready``, ``failed: why`` or ``exited ...``."""
        by_object: dict[Any, _Worker] = {}
        for worker in self._workers.values():
            by_object[worker.conn] = worker
            by_object[worker.process.sentinel] = worker
        happened: list[tuple[_Worker, str]] = []
        for item in wait([wake, *by_object], timeout):
            if item is wake:
                _drain(wake)
                continue
            worker = by_object[item]
            if item is worker.conn:
                happened += [(worker, message) for message in _received(worker.conn)]
                continue
            if self._workers.get(worker.index) is not worker:
                continue  # both ends of this worker were ready: handled once
            worker.process.join()
            del self._workers[worker.index]
            happened += [(worker, message) for message in _received(worker.conn)]
            worker.conn.close()
            happened.append((worker, f"exited: {_exit_reason(worker.process.exitcode)}"))
        return happened

    def _supervise(self, wake: socket.socket, folder: Path) -> None:
        from prometheus_client import multiprocess

        while self._signalled is None:
            now = time.monotonic()
            for index, due in list(self._due.items()):
                if due <= now:
                    del self._due[index]
                    self._spawn(index)
            timeout = max(0.0, min(self._due.values()) - now) if self._due else None
            for worker, event in self._events(wake, timeout):
                if event == "ready":
                    worker.ready = True
                    self._failures.pop(worker.index, None)
                    worker.conn.send(_SERVE)
                    logger.info("worker %d (pid %s) replaced", worker.index, worker.process.pid)
                elif event.startswith("failed: "):
                    logger.error(
                        "worker %d could not start: %s", worker.index, event[len("failed: ") :]
                    )
                elif event.startswith("exited: ") and self._signalled is None:
                    if worker.process.pid is not None:
                        multiprocess.mark_process_dead(worker.process.pid, str(folder))  # type: ignore[no-untyped-call]
                    self._replace(worker, event[len("exited: ") :])

    def _replace(self, worker: _Worker, reason: str) -> None:
        failures = self._failures.get(worker.index, 0) + (0 if worker.ready else 1)
        self._failures[worker.index] = failures
        delay = 0.0 if failures == 0 else min(MAX_BACKOFF_S, 2.0 ** (failures - 1))
        logger.warning(
            "worker %d (pid %s) %s; starting a replacement%s",
            worker.index,
            worker.process.pid,
            reason,
            f" in {delay:.0f}s" if delay else "",
        )
        self._due[worker.index] = time.monotonic() + delay

    def _stop_all(self) -> None:
        """SIGTERM every worker, wait for its drain, kill what outlives the grace."""
        workers = list(self._workers.values())
        if self._signalled is not None:
            logger.info(
                "received %s: draining %d workers",
                signal.Signals(self._signalled).name,
                len(workers),
            )
        for worker in workers:
            if worker.process.is_alive() and worker.process.pid is not None:
                os.kill(worker.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.config.grace_s + STOP_MARGIN_S
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
            if worker.process.is_alive():
                logger.error("worker %d did not stop in time; killing it", worker.index)
                worker.process.kill()
                worker.process.join()
            worker.conn.close()
        self._workers.clear()


def _received(conn: Connection) -> list[str]:
    """Every message waiting on ``conn`` (none once the other end is gone)."""
    messages: list[str] = []
    try:
        while not conn.closed and conn.poll():
            messages.append(str(conn.recv()))
    except (EOFError, OSError):
        pass  # the worker's exit is reported through its sentinel
    return messages


def _drain(wake: socket.socket) -> None:
    try:
        while wake.recv(512):
            pass
    except BlockingIOError:
        pass


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def serve_workers(path: Path, config: ServeConfig, count: int) -> int:
    """Run ``count`` workers until SIGTERM or SIGINT; returns 0 after they drained."""
    return WorkerPool(path, config, count).run()


# --- the worker process -------------------------------------------------------------


def worker_main(
    index: int, path: Path, config: ServeConfig, conn: Connection, log_level: int
) -> None:
    """Entry point of one worker process (run by the parent through ``spawn``)."""
    from fleetmind.runtime.launch.children import LOG_FORMAT

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent turns Ctrl-C into SIGTERM
    _die_with_parent()
    os.environ[WORKER_ENV] = str(index)
    logging.basicConfig(
        level=log_level, format=LOG_FORMAT.replace("%(name)s", f"worker {index} %(name)s")
    )
    try:
        code = asyncio.run(_serve_worker(path, config, conn))
    except Exception as exc:  # reported to the parent, which names this worker
        from fleetmind.core.errors import FleetmindError

        if not isinstance(exc, FleetmindError):
            logger.exception("worker %d failed", index)
        reason = str(exc) if isinstance(exc, FleetmindError) else f"{type(exc).__name__}: {exc}"
        with contextlib.suppress(OSError):
            conn.send(f"failed: {reason}")
        code = 1
    conn.close()
    sys.exit(code)


async def _serve_worker(path: Path, config: ServeConfig, conn: Connection) -> int:
    from fleetmind.nn.threads import limit_threads
    from fleetmind.serve.metrics import SharedServeMetrics
    from fleetmind.serve.repository import resolve_loader
    from fleetmind.serve.server import InferenceServer

    limit_threads(config.torch_threads)
    server = InferenceServer(
        path,
        config,
        resolve_loader(config.loader),
        metrics=SharedServeMetrics(),
        share_port=True,
    )
    await server.start(ready=False)
    loop = asyncio.get_running_loop()
    tasks: dict[str, asyncio.Task[None]] = {}

    def stop() -> None:
        if "stop" not in tasks:
            tasks["stop"] = loop.create_task(server.stop())

    def on_message() -> None:
        try:
            while conn.poll():
                if conn.recv() == _SERVE and "ready" not in tasks:
                    tasks["ready"] = loop.create_task(server.mark_ready())
        except (EOFError, OSError):  # the parent is gone
            loop.remove_reader(conn.fileno())
            stop()

    loop.add_reader(conn.fileno(), on_message)
    loop.add_signal_handler(signal.SIGTERM, stop)
    conn.send("ready")
    try:
        await server.wait_stopped()
    finally:
        loop.remove_signal_handler(signal.SIGTERM)
        await server.stop()
    return 0


def _die_with_parent() -> None:
    """Ask the kernel to end this worker with SIGKILL when the parent dies."""
    from fleetmind.runtime.launch.children import PARENT_PID_ENV, die_with_parent

    os.environ[PARENT_PID_ENV] = str(os.getppid())
    die_with_parent()
