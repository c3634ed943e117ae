"""The local launcher: this process serves the learner, N child processes act.

``fleetmind train ENV --actors N`` calls :func:`train_distributed`. The learner
listens on a ``unix:`` socket in a private temporary directory; each actor is a
``python -m fleetmind actor`` child with ``--envs / N`` environment copies (so an
update sees the same ``T x E`` batch as the single-process path). A child that
dies unexpectedly is restarted and registers again; children die with the
launcher (``PR_SET_PDEATHSIG``) and are stopped when training ends.

The first actors start as forks of the launcher, before the learner builds its
server: they inherit the imported modules (torch alone takes over a second to
import) and register as soon as the socket answers. A fork is safe only while the
process runs one thread and no gRPC object exists, so restarts, which happen while
the learner serves, start a fresh interpreter instead (:mod:`fleetmind.runtime.forked`).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from functools import partial
from pathlib import Path
from typing import Any, TextIO

from fleetmind.config import config_from_mapping, config_to_dict
from fleetmind.core.errors import ConfigError
from fleetmind.rpc.server import ServerConfig
from fleetmind.runtime.children import child_env
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import ActorConfig, DistConfig, apply_env
from fleetmind.runtime.forked import ForkedChild, can_fork
from fleetmind.runtime.learner_run import run_learner
from fleetmind.runtime.local import prepare_new, prepare_resume
from fleetmind.runtime.run_setup import RunSetup
from fleetmind.runtime.trainer import TrainResult

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
    from fleetmind.runtime.actor import run_actor_from_config

    return run_actor_from_config(config)


def check_dist(name: str, dist: DistConfig, learners: int | None = None) -> None:
    """ConfigError when algorithm ``name`` and the mode do not fit together.

    ``learners``: the group size when it does not come from ``dist`` (torchrun's).
    """
    dist.validate()
    learners = dist.learners if learners is None else learners
    if name in ("mappo", "ippo") and dist.mode != "sync":
        raise ConfigError(f"--algo {name} trains on-policy: use --mode sync (not {dist.mode})")
    if dist.mode == "async" and name != "impala":
        raise ConfigError(
            f"--mode async learns off-policy with V-trace: pass --algo impala (not {name})"
        )
    if dist.mode == "sync" and name == "impala":
        raise ConfigError("--algo impala trains with --mode async")
    if learners > 1 and name not in ("ppo", "impala"):
        raise ConfigError(
            "--learners > 1 shares PPO (--mode sync) or IMPALA (--mode async) updates; "
            f"--algo {name} trains with one learner"
        )


def train_distributed(
    config: TrainConfig,
    algo_config: Any,
    dist: DistConfig,
    *,
    force: bool = False,
    progress: bool | None = None,
) -> TrainResult:
    """Train with a learner here and ``dist.actors`` actor processes."""
    check_dist(config.algo, dist)
    extra = {"distributed": config_to_dict(dist)}
    config, spec, algo_cfg, run_dir, full = prepare_new(
        config, algo_config, force=force, extra=extra
    )
    setup = RunSetup(config, spec, algo_cfg, run_dir, full)
    return _launch(setup, dist, progress)


def resume_distributed(
    path: Path,
    overrides: dict[str, Any],
    dist_overrides: dict[str, Any],
    progress: bool | None = None,
) -> TrainResult:
    """Continue a run from its latest checkpoint with a fresh learner and actors."""
    overrides = {k: v for k, v in overrides.items() if not (k == "env_id" and v is None)}
    config, spec, algo_cfg, run_dir, full, state = prepare_resume(path, overrides)
    saved = dict(full.get("distributed", {}))
    saved.update(dist_overrides)
    dist = config_from_mapping(DistConfig, saved, "distributed")
    full["distributed"] = config_to_dict(dist)
    return _launch(RunSetup(config, spec, algo_cfg, run_dir, full, state), dist, progress)


def _launch(setup: RunSetup, dist: DistConfig, progress: bool | None) -> TrainResult:
    check_dist(setup.spec.name, dist)
    envs_per_actor = max(1, setup.config.envs // max(dist.actors, 1))
    sock_dir = tempfile.mkdtemp(prefix="fleetmind-")
    pool = ActorPool(dist.actors, envs_per_actor, setup.run_dir.path / "actors")
    try:
        if dist.learners > 1:
            from fleetmind.runtime.learner_pool import run_learner_group

            return run_learner_group(setup.run_dir.path, dist.learners, Path(sock_dir), pool)
        address = f"unix:{sock_dir}/learner.sock"
        pool.start(address, fork=True)  # they register once the learner listens
        return run_learner(setup, dist, address, ServerConfig(reflection=False), progress)
    finally:
        pool.close()
        shutil.rmtree(sock_dir, ignore_errors=True)
