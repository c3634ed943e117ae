"""A pod: a network namespace on the bridge, init containers, then its containers.

A pod is Ready when every container's readiness holds and it is not terminating;
:attr:`Pod.ready_since` serves ``minReadySeconds``. Deleting a pod marks it
terminating first, which takes it out of every Service's endpoints (and so out of
the DNS answers) at once, as the endpoint controller does, and then stops its
containers within ``terminationGracePeriodSeconds``.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path

from fleetmind.deploy.local_cluster.container import Container, ContainerSpec
from fleetmind.deploy.local_cluster.network import Endpoint
from fleetmind.deploy.local_cluster.pod_spec import PodMeta

logger = logging.getLogger(__name__)


class Pod:
    """One running pod; ``changed`` is called whenever its readiness may have changed."""

    def __init__(
        self,
        meta: PodMeta,
        endpoint: Endpoint,
        specs: tuple[list[ContainerSpec], list[ContainerSpec]],
        folder: Path,
        changed: Callable[[], None],
        *,
        template_hash: str,
        restart_backoff_s: float = 10.0,
    ) -> None:
        self.meta = meta
        self.endpoint = endpoint
        self.folder = folder
        self.template_hash = template_hash
        self.log_path = folder / "log"
        self.terminating = False
        self.created_at = time.monotonic()
        self.ready_since: float | None = None
        """When it last turned Ready (monotonic), None while it is not."""
        self._changed = changed
        self._backoff = restart_backoff_s
        self._init_specs, specs_main = specs
        self.containers = [
            Container(spec, endpoint.netns, endpoint.address, self.log_path, self._on_change,
                      restart_backoff_s=restart_backoff_s)
            for spec in specs_main
        ]  # fmt: skip
        self._grace = specs_main[0].grace_s if specs_main else 30.0
        self._stop = threading.Event()
        self._starter = threading.Thread(target=self._start, name=f"pod-{meta.name}", daemon=True)

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def address(self) -> str:
        return self.endpoint.address

    @property
    def ready(self) -> bool:
        """Every container is Ready and the pod is not being deleted."""
        return (
            not self.terminating and bool(self.containers) and all(c.ready for c in self.containers)
        )

    @property
    def restarts(self) -> int:
        """Container restarts, summed over the pod's containers."""
        return sum(c.restarts for c in self.containers)

    def available(self, min_ready_s: float, now: float | None = None) -> bool:
        """Ready for at least ``min_ready_s`` (a Deployment's minReadySeconds)."""
        now = time.monotonic() if now is None else now
        return self.ready and self.ready_since is not None and now - self.ready_since >= min_ready_s

    def start(self) -> None:
        """Run the init containers in order, then start every container (in the background)."""
        self._starter.start()

    def _start(self) -> None:
        for spec in self._init_specs:
            if not self._run_init(spec):
                return
        for container in self.containers:
            container.start()

    def _run_init(self, spec: ContainerSpec) -> bool:
        runner = Container(spec, self.endpoint.netns, self.address, self.log_path, lambda: None)
        backoff = self._backoff
        while not self._stop.is_set():
            with self.log_path.open("ab") as log:
                done = subprocess.run(
                    runner.launch_argv(spec.argv), env=dict(spec.env), stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, check=False,
                )  # fmt: skip
            if done.returncode == 0:
                return True
            logger.warning("init container %s of %s exited %d", spec.name, self.name,
                           done.returncode)  # fmt: skip
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, 300.0)
        return False

    def _on_change(self) -> None:
        ready = self.ready
        if ready and self.ready_since is None:
            self.ready_since = time.monotonic()
        elif not ready:
            self.ready_since = None
        self._changed()

    def mark_terminating(self) -> None:
        """Out of the endpoints at once; the containers still run."""
        self.terminating = True
        self._on_change()

    def stop(self, grace_s: float | None = None) -> None:
        """Terminate every container (SIGTERM, SIGKILL after the grace); blocks until gone."""
        self.mark_terminating()
        self._stop.set()
        grace = self._grace if grace_s is None else grace_s
        stoppers = [
            threading.Thread(target=c.stop, args=(grace,), daemon=True) for c in self.containers
        ]
        for thread in stoppers:
            thread.start()
        for thread in stoppers:
            thread.join()
        if self._starter.is_alive():
            self._starter.join(timeout=grace + 10)
