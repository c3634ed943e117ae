"""Run a function in a fork of this process, with a ``Popen``-like handle.

A fork inherits every imported module, so the child skips the interpreter's start and
the imports (torch, gymnasium, gRPC: about two seconds on a small machine) that a
``python -m fleetmind`` child pays. Forking is safe only while this process runs a
single thread and has created no gRPC channel or server (gRPC's threads and file
descriptors do not survive a fork): :func:`can_fork` checks the first, and callers
fork before they serve. The child writes to its own log file (fleetmind's log lines
at ``log_level``), dies with this process (``PR_SET_PDEATHSIG``, as
:mod:`fleetmind.runtime.launch.children` arranges), waits for the ``start_when`` file (a
server's unix socket) and exits with ``target()``'s code; a FleetmindError becomes a
one-line message and exit code 2, as in the ``fleetmind`` command::

    child = ForkedChild(partial(run_actor_from_config, config), log_path, start_when=socket)
    child.poll()            # None while it runs, then its exit code (-N: signal N)
    child.terminate(); child.wait(5.0)
"""

from __future__ import annotations

import io
import logging
import multiprocessing
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fleetmind.core.errors import FleetmindError
from fleetmind.runtime.launch.children import LOG_FORMAT, PARENT_PID_ENV, die_with_parent

FORK_UNSAFE_MODULES = ("libsumo", "traci")
"""Modules whose loaded state a fork must not share (SUMO's in-process simulation and
its TraCI connections): a process that imported one starts fresh interpreters."""


def can_fork() -> bool:
    """True when this process may fork a child that goes on running Python."""
    return (
        sys.platform == "linux"
        and threading.active_count() == 1
        and not any(name in sys.modules for name in FORK_UNSAFE_MODULES)
    )


START_WAIT_S = 120.0
"""Longest a child waits for its ``start_when`` file before it runs anyway."""


def _child_main(
    target: Callable[[], int], log_path: str, start_when: str | None, log_level: str
) -> None:
    """In the fork: own log, default signals, the ``start_when`` file, then ``target``."""
    fd = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    sys.stdout = io.TextIOWrapper(io.FileIO(1, "w", closefd=False), line_buffering=True)
    sys.stderr = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), line_buffering=True)
    logging.basicConfig(level=log_level, format=LOG_FORMAT, stream=sys.stderr, force=True)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.environ[PARENT_PID_ENV] = str(os.getppid())
    die_with_parent()
    deadline = time.monotonic() + START_WAIT_S
    while start_when is not None and not os.path.exists(start_when):
        if time.monotonic() > deadline:
            break  # the target reports what it cannot reach
        time.sleep(0.005)
    try:
        code = target()
    except FleetmindError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 2
    sys.stdout.flush()
    sys.stderr.flush()
    sys.exit(code)


class ForkedChild:
    """``target()`` in a fork, with the part of ``subprocess.Popen`` a pool uses."""

    def __init__(
        self,
        target: Callable[[], int],
        log_path: Path,
        start_when: Path | None = None,
        log_level: str = "WARNING",
    ) -> None:
        context = multiprocessing.get_context("fork")
        wait = None if start_when is None else str(start_when)
        self._process = context.Process(
            target=_child_main, args=(target, str(log_path), wait, log_level), name="fleetmind"
        )
        self._process.start()
        self.args = [getattr(target, "__name__", repr(target))]

    @property
    def pid(self) -> int:
        """The child's process id."""
        pid = self._process.pid
        return -1 if pid is None else pid

    @property
    def returncode(self) -> int | None:
        """Exit code once it ended (-N: killed by signal N), else None."""
        return self._process.exitcode

    def poll(self) -> int | None:
        """As :meth:`subprocess.Popen.poll`."""
        return self._process.exitcode

    def wait(self, timeout: float | None = None) -> int:
        """As :meth:`subprocess.Popen.wait` (raises ``TimeoutExpired``)."""
        self._process.join(timeout)
        code = self._process.exitcode
        if code is None:
            raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
        return code

    def terminate(self) -> None:
        """SIGTERM."""
        self._process.terminate()

    def kill(self) -> None:
        """SIGKILL."""
        self._process.kill()
