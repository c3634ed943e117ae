"""One container of a pod: a process tree in the pod's namespaces, probed and restarted.

The process starts as ``ip netns exec NETNS python -I -S container_exec.py SPEC``
(:mod:`.container_exec` sets host name, mounts and user, then execs the command),
in a session of its own, its output appended to the pod's log file. A supervisor
thread restarts it when it exits or its liveness or startup probe fails (with
``restartPolicy: Always``'s backoff), and runs its probes (:mod:`.probes`).
Stopping sends SIGTERM to the main process, SIGKILL to every process of the
session after the grace period, as a container runtime does.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fleetmind.deploy.local_cluster import container_exec
from fleetmind.deploy.local_cluster.probes import Probe, ProbeWorker, attempt

logger = logging.getLogger(__name__)

MAX_BACKOFF_S = 300.0
"""kubelet's cap on the wait before restarting a container that keeps exiting."""


@dataclass(frozen=True)
class Mount:
    """A folder of this machine mounted at ``target`` inside the container."""

    source: Path
    target: str
    read_only: bool = False


@dataclass(frozen=True)
class ContainerSpec:
    """What the cluster runs for one container of a pod spec (resolved from the manifests)."""

    name: str
    argv: tuple[str, ...]
    env: Mapping[str, str]
    mounts: tuple[Mount, ...] = ()
    startup: Probe | None = None
    readiness: Probe | None = None
    liveness: Probe | None = None
    uid: int | None = None
    gid: int | None = None
    groups: tuple[int, ...] = ()
    read_only_root: bool = False
    cwd: str = "/"
    hostname: str = "localhost"
    grace_s: float = 30.0
    """terminationGracePeriodSeconds: SIGTERM to SIGKILL when a probe restarts it."""


class Container:
    """A supervised container process; ``changed`` is called when it turns (not) Ready."""

    def __init__(
        self,
        spec: ContainerSpec,
        netns: str,
        address: str,
        log_path: Path,
        changed: Callable[[], None],
        *,
        restart_backoff_s: float = 10.0,
    ) -> None:
        self.spec = spec
        self.netns = netns
        self.address = address
        self.log_path = log_path
        self.restart_backoff_s = restart_backoff_s
        self.ready = False
        """Readiness: its readiness probe passes (or it has started, without one)."""
        self.started = False
        """Its startup probe passed (or it runs, without one)."""
        self.restarts = 0
        self.last_exit_code: int | None = None
        """How its last process ended (kubelet's ``lastState.terminated.exitCode``;
        negative: the signal that ended it)."""
        self.process: subprocess.Popen[bytes] | None = None
        self._changed = changed
        self._stopping = threading.Event()
        self._wake = threading.Event()
        self._unhealthy = False
        self._workers: list[ProbeWorker] = []
        self._lock = threading.Lock()
        self._supervisor = threading.Thread(
            target=self._supervise, name=f"container-{spec.hostname}-{spec.name}", daemon=True
        )

    def launch_argv(self, argv: Sequence[str]) -> list[str]:
        """The command line that runs ``argv`` inside this container's namespaces."""
        spec = self.spec
        payload = {
            "hostname": spec.hostname,
            "mounts": [
                {"source": str(m.source), "target": m.target, "read_only": m.read_only}
                for m in spec.mounts
            ],
            "read_only_root": spec.read_only_root,
            "uid": spec.uid,
            "gid": spec.gid,
            "groups": list(spec.groups),
            "cwd": spec.cwd,
            "argv": list(argv),
        }
        helper = container_exec.__file__
        return ["ip", "netns", "exec", self.netns, sys.executable, "-I", "-S", helper,
                json.dumps(payload)]  # fmt: skip

    def start(self) -> None:
        """Start the process and its supervisor."""
        self._supervisor.start()

    def _supervise(self) -> None:
        backoff = self.restart_backoff_s
        while not self._stopping.is_set():
            started_at = time.monotonic()
            self._run_once()
            if self._stopping.is_set():
                return
            self.restarts += 1
            if time.monotonic() - started_at > 600:  # kubelet resets after 10 min of running
                backoff = self.restart_backoff_s
            logger.warning("%s/%s restarts in %.0f s", self.spec.hostname, self.spec.name, backoff)
            if self._stopping.wait(backoff):
                return
            backoff = min(backoff * 2, MAX_BACKOFF_S)

    def _run_once(self) -> None:
        """Run the process until it exits, fails liveness/startup, or the container stops."""
        with self.log_path.open("ab") as log, self._lock:
            if self._stopping.is_set():
                return
            self._wake.clear()
            self._unhealthy = False
            self.process = subprocess.Popen(
                self.launch_argv(self.spec.argv),
                env=dict(self.spec.env),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        process = self.process
        threading.Thread(target=self._await_exit, args=(process,), daemon=True).start()
        self._start_probes()
        self._wake.wait()
        self._stop_probes()
        self._set_ready(False)
        if self._unhealthy and not self._stopping.is_set():
            self._terminate(process, self.spec.grace_s)
        self._kill_session(process)

    def _await_exit(self, process: subprocess.Popen[bytes]) -> None:
        code = process.wait()
        self.last_exit_code = code
        logger.debug("%s/%s exited with %s", self.spec.hostname, self.spec.name, code)
        self._wake.set()

    def _start_probes(self) -> None:
        spec = self.spec
        self.started = False
        if spec.startup is None:
            self._on_started(True)
            return
        self._workers.append(
            self._worker("startup", spec.startup, self._on_started, initially=False, once=True)
        )

    def _on_started(self, passed: bool) -> None:
        if not passed:
            self._fail("startup")
            return
        self.started = True
        spec = self.spec
        if spec.readiness is None:
            self._set_ready(True)
        else:
            self._workers.append(
                self._worker("readiness", spec.readiness, self._set_ready, initially=False)
            )
        if spec.liveness is not None:
            self._workers.append(
                self._worker("liveness", spec.liveness, self._on_live, initially=True)
            )

    def _worker(
        self,
        kind: str,
        probe: Probe,
        on_result: Callable[[bool], None],
        *,
        initially: bool,
        once: bool = False,
    ) -> ProbeWorker:
        def check() -> bool:
            return attempt(probe, self.address, self.run_exec)

        return ProbeWorker(f"{kind}-{self.spec.hostname}", probe, check, on_result,
                           initially=initially, stop_on_success=once)  # fmt: skip

    def _on_live(self, passed: bool) -> None:
        if not passed:
            self._fail("liveness")

    def _fail(self, which: str) -> None:
        logger.warning("%s/%s failed its %s probe", self.spec.hostname, self.spec.name, which)
        self._unhealthy = True
        self._wake.set()

    def _set_ready(self, ready: bool) -> None:
        if ready != self.ready:
            self.ready = ready
            self._changed()

    def _stop_probes(self) -> None:
        workers, self._workers = self._workers, []
        for worker in workers:
            worker.stop()

    def run_exec(self, argv: Sequence[str], timeout_s: float) -> int:
        """Run ``argv`` in this container (an ``exec`` probe); its exit status."""
        done = subprocess.run(
            self.launch_argv(argv), env=dict(self.spec.env), capture_output=True,
            timeout=timeout_s, check=False,
        )  # fmt: skip
        return done.returncode

    def stop(self, grace_s: float) -> None:
        """SIGTERM, then SIGKILL after ``grace_s``; returns once every process is gone."""
        with self._lock:
            self._stopping.set()
            process = self.process
        self._stop_probes()
        self._set_ready(False)
        if process is not None:
            self._terminate(process, grace_s)
            self._kill_session(process)
        self._wake.set()
        if self._supervisor.is_alive():
            self._supervisor.join(timeout=grace_s + 10)

    @staticmethod
    def _terminate(process: subprocess.Popen[bytes], grace_s: float) -> None:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=grace_s)
            except subprocess.TimeoutExpired:
                logger.warning("pid %d outlived its grace of %.0f s; killing", process.pid, grace_s)

    @staticmethod
    def _kill_session(process: subprocess.Popen[bytes]) -> None:
        """SIGKILL what is left of the container's processes (its session)."""
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
