"""The one-machine cluster: rendered Deployments, StatefulSets and Services as processes.

::

    with LocalCluster(Path("k8s/cartpole"), workdir, claims={"cartpole-models": run_dir},
                      secrets={"cartpole-tokens": {"tokens": "s3cret\\n"}}) as cluster:
        cluster.wait_ready()
        cluster.endpoints("cartpole")           # the Ready pods' addresses
        client = cluster.run_client([sys.executable, "-m", "mytool", "cartpole:8001"])
        cluster.scale("cartpole", 3)
        cluster.rolling_update("cartpole", env={"server": {"FLEETMIND_MAX_BATCH_SIZE": "32"}})

A controller thread reconciles every workload (:mod:`.workloads`) whenever a pod
changes and at least once a second; pods are network namespaces with processes
(:mod:`.pod`), the Services are answered by the DNS server (:mod:`.dns`) from the
Ready pods they select. :meth:`LocalCluster.close` removes every process,
namespace, link and file it made, also after a failure.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from fleetmind.core.errors import ConfigError
from fleetmind.deploy.local_cluster import manifests as mf
from fleetmind.deploy.local_cluster.dns import ServiceDns
from fleetmind.deploy.local_cluster.network import CLUSTER_DOMAIN, Endpoint, PodNetwork
from fleetmind.deploy.local_cluster.pod import Pod
from fleetmind.deploy.local_cluster.pod_spec import PodInputs, PodMeta, container_specs
from fleetmind.deploy.local_cluster.services import Services
from fleetmind.deploy.local_cluster.workloads import Controller, controller_for

logger = logging.getLogger(__name__)

RESYNC_S = 1.0
"""Longest time between two reconciles of every workload."""
MADE_DIRS = Path("/run/fleetmind-local-cluster.dirs")
"""Mount points the cluster created on this machine, one per line (removed on close, or
by the next cluster when this one was interrupted)."""


class LocalCluster:
    """Runs a kustomization's workloads on this machine (root, iproute2); see the module."""

    def __init__(
        self,
        directory: Path | mf.Manifests,
        workdir: Path,
        *,
        cidr: str = "10.244.0.0/24",
        restart_backoff_s: float = 10.0,
        **inputs: Any,
    ) -> None:
        self.manifests = directory if isinstance(directory, mf.Manifests) else mf.load(directory)
        self.workdir = Path(workdir)
        config_maps = {
            o["metadata"]["name"]: dict(o.get("data") or {})
            for o in self.manifests.of_kind("ConfigMap")
        }
        config_maps.update(inputs.pop("config_maps", {}))
        self.inputs = PodInputs(self.workdir, config_maps=config_maps, **inputs)
        self.restart_backoff_s = restart_backoff_s
        self.network = PodNetwork(cidr)
        self.controllers: dict[str, Controller] = {}
        self.services = Services(self.manifests.of_kind("Service"), self._all_pods)
        self._changed = threading.Condition()
        self.errors: dict[str, ConfigError] = {}
        """Workload name -> why its controller could not make a pod (e.g. a missing Secret)."""
        self._closed = False
        self._stoppers: list[threading.Thread] = []
        self._clients: list[tuple[subprocess.Popen[bytes], Endpoint]] = []
        self._dns: ServiceDns | None = None
        self._loop: threading.Thread | None = None

    # -- lifecycle ---------------------------------------------------------------

    def apply(self) -> LocalCluster:
        """Create the network, the DNS server, every Service and every workload's pods."""
        try:
            self.workdir.mkdir(parents=True, exist_ok=True)
            self.network.open()
            _remove_made_dirs()
            self._dns = ServiceDns(self.network.gateway, self.lookup)
            sizes = self._autoscaled_sizes()
            for kind in ("Deployment", "StatefulSet"):
                for obj in self.manifests.of_kind(kind):
                    ctl = controller_for(obj, self._spawn, self._remove)
                    if "replicas" not in obj["spec"] and ctl.name in sizes:
                        ctl.replicas = sizes[ctl.name]
                    self.controllers[ctl.name] = ctl
            self._loop = threading.Thread(target=self._reconcile_forever, daemon=True,
                                          name="local-cluster-controllers")  # fmt: skip
            self._loop.start()
        except BaseException:
            self.close()
            raise
        return self

    def _autoscaled_sizes(self) -> dict[str, int]:
        """An HPA's minReplicas for a workload that leaves its size to it."""
        return {
            hpa["spec"]["scaleTargetRef"]["name"]: int(hpa["spec"].get("minReplicas", 1))
            for hpa in self.manifests.of_kind("HorizontalPodAutoscaler")
        }

    def __enter__(self) -> LocalCluster:
        return self.apply()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Stop every pod and client, then remove namespaces, bridge, DNS and mount points."""
        with self._changed:
            self._closed = True
            self._changed.notify_all()
        if self._loop is not None:
            self._loop.join(timeout=10)
        for process, endpoint in self._clients:
            _stop_process(process)
            self.network.remove(endpoint)
        for ctl in self.controllers.values():
            for pod in list(ctl.pods):
                self._remove(pod)
        for thread in list(self._stoppers):
            thread.join()
        if self._dns is not None:
            self._dns.close()
            self._dns = None
        if self.network.opened:
            _remove_made_dirs()
            self.network.close()

    # -- the controllers ---------------------------------------------------------

    def _reconcile_forever(self) -> None:
        with self._changed:
            while not self._closed:
                now = time.monotonic()
                wakes = []
                for ctl in self.controllers.values():
                    try:
                        wakes.append(ctl.reconcile(now))
                    except ConfigError as exc:  # a pod that cannot be made; wait_* raise it
                        self.errors[ctl.name] = exc
                    except Exception:
                        logger.exception("reconciling %s %s failed", ctl.kind, ctl.name)
                due = [w - now for w in wakes if w is not None]
                self._changed.wait(max(0.01, min([RESYNC_S, *due])))

    def _notify(self) -> None:
        with self._changed:
            self._changed.notify_all()

    def _spawn(self, ctl: Controller, name: str, template: mf.Obj, template_hash: str) -> Pod:
        spec = template.get("spec", {})
        hostname = spec.get("hostname") or name
        subdomain = spec.get("subdomain")
        fqdn = f"{hostname}.{subdomain}.{ctl.namespace}.svc.{CLUSTER_DOMAIN}" if subdomain else None
        endpoint = self.network.add(ctl.namespace, hostname, fqdn)
        hash_label = "pod-template-hash" if ctl.kind == "Deployment" else "controller-revision-hash"
        labels = {**(template.get("metadata", {}).get("labels") or {}), hash_label: template_hash}
        meta = PodMeta(
            name=name,
            namespace=ctl.namespace,
            uid=str(uuid.uuid4()),
            address=endpoint.address,
            owner=ctl.name,
            labels=labels,
            annotations=dict(template.get("metadata", {}).get("annotations") or {}),
            hostname=hostname,
            fqdn=fqdn,
        )
        folder = self.workdir / "pods" / f"{name}-{meta.uid[:8]}"
        folder.mkdir(parents=True)
        try:
            specs = container_specs(template, meta, self.inputs, folder)
            for target in (m.target for s in (*specs[0], *specs[1]) for m in s.mounts):
                self._ensure_dir(Path(target))
        except BaseException:
            self.network.remove(endpoint)
            raise
        pod = Pod(meta, endpoint, specs, folder, self._notify, template_hash=template_hash,
                  restart_backoff_s=self.restart_backoff_s)  # fmt: skip
        logger.info("pod %s at %s", name, endpoint.address)
        pod.start()
        return pod

    def _ensure_dir(self, target: Path) -> None:
        """Create a missing mount point (and remember it, to remove it on close)."""
        missing = []
        for folder in (target, *target.parents):
            if folder.exists():
                break
            missing.append(folder)
        for folder in reversed(missing):
            folder.mkdir()
            with MADE_DIRS.open("a") as record:
                record.write(f"{folder}\n")

    def _remove(self, pod: Pod, grace_s: float | None = None) -> threading.Thread | None:
        if pod.terminating:
            return None
        pod.mark_terminating()

        def stop() -> None:
            try:
                pod.stop(grace_s)
            finally:
                with self._changed:
                    for ctl in self.controllers.values():
                        if pod in ctl.pods:
                            ctl.pods.remove(pod)
                    self.network.remove(pod.endpoint)
                    self._changed.notify_all()

        thread = threading.Thread(target=stop, name=f"stop-{pod.name}", daemon=True)
        self._stoppers.append(thread)
        thread.start()
        return thread

    # -- what the caller does ----------------------------------------------------

    def controller(self, name: str) -> Controller:
        """The Deployment or StatefulSet ``name``."""
        if name not in self.controllers:
            raise ConfigError(f"no Deployment or StatefulSet named {name!r}")
        return self.controllers[name]

    def pods(self, workload: str | None = None) -> list[Pod]:
        """Pods (of ``workload``), terminating ones included."""
        with self._changed:
            ctls = [self.controller(workload)] if workload else list(self.controllers.values())
            return [p for ctl in ctls for p in ctl.pods]

    def pod(self, name: str) -> Pod:
        """The pod ``name``."""
        for pod in self.pods():
            if pod.name == name:
                return pod
        raise ConfigError(f"no pod named {name!r}")

    def wait_for(
        self, check: Callable[[], bool], timeout_s: float, what: str, *, every_s: float = RESYNC_S
    ) -> None:
        """Wait until ``check()`` holds, checking at every change of the cluster and at
        least every ``every_s`` (the cluster's lock is not held while it checks)."""
        deadline = time.monotonic() + timeout_s
        while not check():
            if self.errors:
                name, error = next(iter(self.errors.items()))
                raise ConfigError(f"{name}: {error}")
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"timed out after {timeout_s:g} s waiting for {what}")
            with self._changed:
                self._changed.wait(min(left, every_s))

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Wait until every workload has its size, current template and Ready pods."""
        self.wait_for(
            lambda: all(c.settled() for c in self.controllers.values()),
            timeout_s,
            "every pod Ready",
        )

    def scale(self, name: str, replicas: int, *, wait_s: float | None = 120.0) -> None:
        """Set the size of ``name``; wait (unless ``wait_s`` is None) until it is settled."""
        ctl = self.controller(name)
        with self._changed:
            ctl.replicas = replicas
            self._changed.notify_all()
        if wait_s is not None:
            self.wait_for(ctl.settled, wait_s, f"{name} at {replicas} Ready replicas")

    def delete_pod(self, name: str, *, grace_s: float | None = None, wait: bool = True) -> None:
        """Delete a pod as ``kubectl delete pod`` does: out of the endpoints at once,
        SIGTERM, SIGKILL after the grace; its controller replaces it."""
        with self._changed:
            thread = self._remove(self.pod(name), grace_s)
            self._changed.notify_all()
        if wait and thread is not None:
            thread.join()

    def rolling_update(
        self,
        name: str,
        *,
        env: Mapping[str, Mapping[str, str]] | None = None,
        patch: Callable[[mf.Obj], None] | None = None,
        wait_s: float | None = 300.0,
    ) -> None:
        """Change the pod template of ``name`` and roll it out by the workload's strategy.

        ``env``: container name -> variables to set; ``patch``: edits the template
        in place. Without either, the template gets a restart annotation (as
        ``kubectl rollout restart`` does).
        """
        ctl = self.controller(name)
        template = copy.deepcopy(ctl.template)
        annotations = template.setdefault("metadata", {}).setdefault("annotations", {})
        annotations["kubectl.kubernetes.io/restartedAt"] = f"{time.time():.6f}"
        for container in template["spec"]["containers"]:
            for key, value in (env or {}).get(container["name"], {}).items():
                variables = container.setdefault("env", [])
                variables[:] = [v for v in variables if v["name"] != key]
                variables.append({"name": key, "value": value})
        if patch is not None:
            patch(template)
        with self._changed:
            ctl.set_template(template)
            self._changed.notify_all()
        if wait_s is not None:
            self.wait_for(ctl.settled, wait_s, f"the rollout of {name}")

    # -- Services and DNS --------------------------------------------------------

    def endpoints(self, service: str, namespace: str | None = None) -> list[str]:
        """Addresses of the pods that Service ``service`` selects and that are Ready."""
        return self.services.endpoints(service, namespace)

    def lookup(self, name: str) -> list[str] | None:
        """What the DNS server answers for ``name`` (see :mod:`.services`)."""
        return self.services.lookup(name)

    def _all_pods(self) -> list[Pod]:
        return [p for ctl in list(self.controllers.values()) for p in list(ctl.pods)]

    # -- clients -----------------------------------------------------------------

    def client_namespace(self, namespace: str = "default") -> Endpoint:
        """A network namespace on the bridge whose ``resolv.conf`` searches ``namespace``."""
        endpoint = self.network.add(namespace, "client")
        return endpoint

    def run_client(
        self,
        argv: Sequence[str],
        *,
        namespace: str = "default",
        env: Mapping[str, str] | None = None,
        **popen: Any,
    ) -> subprocess.Popen[bytes]:
        """Start ``argv`` in a fresh client namespace (removed with the cluster)."""
        endpoint = self.client_namespace(namespace)
        process = subprocess.Popen(
            ["ip", "netns", "exec", endpoint.netns, *argv], env=dict(env) if env else None, **popen
        )
        self._clients.append((process, endpoint))
        return process


def _stop_process(process: subprocess.Popen[Any]) -> None:
    if process.poll() is None:
        process.kill()
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=10)


def _remove_made_dirs() -> None:
    """Remove the empty mount points listed in :data:`MADE_DIRS`, deepest first."""
    if not MADE_DIRS.is_file():
        return
    for line in reversed(MADE_DIRS.read_text().splitlines()):
        with contextlib.suppress(OSError):
            Path(line).rmdir()
    MADE_DIRS.unlink()
