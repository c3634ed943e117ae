"""The actor processes of the local launcher: N children kept alive until training ends.

``ActorPool(count, envs_per_actor, log_dir)`` starts ``count`` actors against one
learner address (or actor k against learner k % L), restarts a child that dies
unexpectedly (it registers again) and stops them all in :meth:`ActorPool.close`.
Children die with their parent (``PR_SET_PDEATHSIG``).

The first actors may start as forks of this process (``start(..., fork=True)``):
they inherit the imported modules (torch alone takes over a second to import) and
wait for the learner's socket. A fork is safe only while the process runs one
thread and no gRPC object exists, so restarts, which happen while the learner
serves, start a fresh ``python -m fleetmind actor`` interpreter instead
(:mod:`fleetmind.runtime.launch.forked`). Both the single-learner launcher
(:mod:`fleetmind.runtime.launch.launcher`) and the learner group
(:mod:`fleetmind.runtime.launch.learner_pool`) feed their learners with one pool.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from functools import partial
from pathlib import Path
from typing import TextIO

from fleetmind.runtime.dist_config import ActorConfig, apply_env
from fleetmind.runtime.launch.children import child_env
from fleetmind.runtime.launch.forked import ForkedChild, can_fork

log = logging.getLogger("fleetmind.launcher")

MAX_RESTARTS = 50
"""Restarts per actor before the launcher stops replacing it."""


class ActorPool:
    """N actor child processes kept alive until :meth:`close`."""

    def __init__(self, count: int, envs_per_actor: int, log_dir: Path) -> None:
        self.count = count
        self.envs_per_actor = envs_per_actor
        self.log_dir = log_dir
        self.addresses: list[str] = []
        self.procs: list[subprocess.Popen[bytes] | ForkedChild | None] = [None] * count
        self.restarts = [0] * count
        self._logs: list[TextIO] = []
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._monitor: threading.Thread | None = None

    def command(self, index: int) -> list[str]:
        """The command line of actor ``index`` (actor k feeds learner k % L)."""
        return [
            sys.executable, "-m", "fleetmind", "--log-level", "WARNING", "actor",
            "--learner", self.addresses[index % len(self.addresses)],
            "--envs", str(self.envs_per_actor), "--actor-id", f"actor-{index}",
        ]  # fmt: skip

    def actor_config(self, index: int) -> ActorConfig:
        """What :meth:`command` asks of actor ``index``; FLEETMIND_* variables fill the rest,
        as they do for a ``fleetmind actor`` process."""
        config = ActorConfig(
            learner=self.addresses[index % len(self.addresses)],
            envs=self.envs_per_actor,
            actor_id=f"actor-{index}",
        )
        given = {"learner", "envs", "actor_id"}
        env_filled: ActorConfig = apply_env(config, given)
        return env_filled

    def start(self, address: str | list[str], fork: bool = False) -> None:
        """Start every actor against ``address`` (or actor k against ``address[k % L]``).

        ``fork``: start them as forks of this process when that is safe (one thread,
        no gRPC object yet), so they skip the interpreter's start and imports.
        """
        self.addresses = [address] if isinstance(address, str) else list(address)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        fork = fork and can_fork()
        for i in range(self.count):
            self._spawn(i, fork)
        self._monitor = threading.Thread(target=self._watch, name="actor-pool", daemon=True)
        self._monitor.start()

    def _spawn(self, index: int, fork: bool = False) -> None:
        log_path = self.log_dir / f"actor-{index}.log"
        if fork:
            address = self.addresses[index % len(self.addresses)]
            socket = Path(address[len("unix:") :]) if address.startswith("unix:") else None
            child = ForkedChild(partial(_forked_actor, self.actor_config(index)), log_path, socket)
            with self._lock:
                self.procs[index] = child
            return
        fh = log_path.open("ab")
        env = child_env({**os.environ, "PYTHONUNBUFFERED": "1"})
        proc = subprocess.Popen(
            self.command(index),
            stdout=fh,
            stderr=subprocess.STDOUT,
            env=env,
        )
        fh.close()
        with self._lock:
            self.procs[index] = proc

    def _watch(self) -> None:
        while not self._closing.wait(0.2):
            for i, proc in enumerate(list(self.procs)):
                if proc is None or proc.poll() is None or self._closing.is_set():
                    continue
                if proc.returncode == 0:
                    continue
                if self.restarts[i] >= MAX_RESTARTS:
                    continue
                self.restarts[i] += 1
                log.warning(
                    "actor-%d exited with %s; restarting (restart %d)",
                    i,
                    proc.returncode,
                    self.restarts[i],
                )
                self._spawn(i)

    def pids(self) -> list[int]:
        """Process ids of the running actors."""
        with self._lock:
            return [p.pid for p in self.procs if p is not None and p.poll() is None]

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop every actor: SIGTERM, then SIGKILL after ``timeout_s``."""
        self._closing.set()
        if self._monitor is not None:
            self._monitor.join()
        procs = [p for p in self.procs if p is not None]
        for p in procs:
            if p.poll() is None:
                p.terminate()
        deadline = time.monotonic() + timeout_s
        for p in procs:
            try:
                p.wait(max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


def _forked_actor(config: ActorConfig) -> int:
    """An actor in a fork of the launcher (see :meth:`ActorPool.start`)."""
    from fleetmind.runtime.actor.worker import run_actor_from_config

    return run_actor_from_config(config)
