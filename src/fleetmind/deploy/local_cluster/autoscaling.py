"""The autoscaler's view of the one-machine cluster: each pod's metric, as the HPA reads it.

An HPA on a ``Resource`` metric (``cpu``) reads each pod's CPU use from
metrics-server, a rate over the last window of the CPU time of the pod's
containers; on a ``Pods`` metric it reads what the Prometheus Adapter computes,
usually ``avg_over_time`` of a gauge on the pod's metrics page.
:class:`PodSampler` samples either for every Ready pod on a thread (the CPU time
of the processes of each container, from ``/proc``, as the cgroup would count it;
or a metric on the metrics page); :meth:`PodSampler.rates` and
:meth:`PodSampler.averages` reduce the samples over a window. metrics-server and
Prometheus look every 15 s over about a minute; a test compresses both (e.g. 0.2 s
over 3 s), which averages more samples and changes nothing else.
:func:`desired_replicas` is the HPA's rule for an average target.
"""

from __future__ import annotations

import math
import os
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from fleetmind.core.errors import ConfigError
from fleetmind.deploy.local_cluster.manifests import Manifests
from fleetmind.deploy.local_cluster.pod import Pod

TOLERANCE = 0.1
"""The HPA leaves the size alone while the ratio to the target is within 10 %."""


def scrape(address: str, port: int, path: str = "/metrics", timeout_s: float = 2.0) -> str:
    """The text of a pod's metrics page."""
    with urllib.request.urlopen(f"http://{address}:{port}{path}", timeout=timeout_s) as reply:
        text: str = reply.read().decode()
    return text


def metric_sum(text: str, name: str) -> float:
    """Sum of every sample of metric ``name`` (all label sets) in a metrics page."""
    total = 0.0
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                total += sample.value
    return total


@dataclass(frozen=True)
class Target:
    """What an HPA holds each pod's metric at."""

    kind: str
    """``Resource`` (then ``metric`` is ``cpu`` or ``memory``) or ``Pods``."""
    metric: str
    average: float
    """The per-pod value it aims at (CPU in cores)."""
    min_replicas: int
    max_replicas: int


def hpa_target(manifests: Manifests, workload: str) -> Target:
    """The first metric target of the HPA that scales ``workload``.

    A ``Utilization`` target (percent of the request) becomes cores of the first
    container's request; ``AverageValue`` is taken as it is.
    """
    for hpa in manifests.of_kind("HorizontalPodAutoscaler"):
        spec = hpa["spec"]
        if spec["scaleTargetRef"]["name"] != workload:
            continue
        sizes = (int(spec.get("minReplicas", 1)), int(spec["maxReplicas"]))
        for metric in spec.get("metrics", []):
            if metric.get("type") == "Resource":
                resource = metric["resource"]
                target = resource["target"]
                if target["type"] == "Utilization":
                    request = _request(manifests, workload, resource["name"])
                    average = request * float(target["averageUtilization"]) / 100
                else:
                    average = quantity(str(target["averageValue"]))
                return Target("Resource", resource["name"], average, *sizes)
            if metric.get("type") == "Pods":
                pods = metric["pods"]
                average = quantity(str(pods["target"]["averageValue"]))
                return Target("Pods", pods["metric"]["name"], average, *sizes)
    raise ConfigError(f"no HorizontalPodAutoscaler scales {workload!r} on a pod metric")


def _request(manifests: Manifests, workload: str, resource: str) -> float:
    for kind in ("Deployment", "StatefulSet"):
        for obj in manifests.of_kind(kind):
            if obj["metadata"]["name"] == workload:
                container = obj["spec"]["template"]["spec"]["containers"][0]
                return quantity(str(container["resources"]["requests"][resource]))
    raise ConfigError(f"no workload {workload!r} with a {resource} request")


def quantity(text: str) -> float:
    """A Kubernetes quantity as a number (``700m`` -> 0.7, ``1Gi`` -> 2**30)."""
    suffixes = {"m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30}
    for suffix, scale in sorted(suffixes.items(), key=lambda kv: -len(kv[0])):
        if text.endswith(suffix):
            return float(text[: -len(suffix)]) * scale
    return float(text)


def desired_replicas(current: int, per_pod: Mapping[str, float], target: float) -> int:
    """The HPA's answer: ``ceil(current * mean / target)``, unchanged within the tolerance."""
    if not per_pod:
        return current
    ratio = sum(per_pod.values()) / len(per_pod) / target
    if abs(ratio - 1.0) <= TOLERANCE:
        return current
    return max(1, math.ceil(current * ratio))


def cpu_seconds(pod: Pod) -> float:
    """CPU time used so far by the processes of the pod's containers (their sessions)."""
    sessions = {c.process.pid for c in pod.containers if c.process is not None}
    total = 0
    for fields in process_stats():
        if int(fields[3]) in sessions:  # field 6 of stat: the session id
            total += int(fields[11]) + int(fields[12])  # utime + stime, in clock ticks
    return total / os.sysconf("SC_CLK_TCK")


def process_stats() -> Iterator[list[str]]:
    """Every live process's /proc/PID/stat fields after the command name (field 3 on)."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            yield (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # a process that just ended


def page_metric(name: str, port: int) -> Callable[[Pod], float]:
    """A reader of metric ``name`` (summed over its series) on the pods' metrics page."""

    def read(pod: Pod) -> float:
        return metric_sum(scrape(pod.address, port), name)

    return read


class PodSampler:
    """Samples ``read(pod)`` for every Ready pod that ``pods()`` lists, on a thread."""

    def __init__(
        self, pods: Callable[[], list[Pod]], read: Callable[[Pod], float], interval_s: float = 0.2
    ) -> None:
        self.interval_s = interval_s
        self.samples: list[tuple[float, str, float]] = []
        """(monotonic time, pod name, value)."""
        self._pods = pods
        self._read = read
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pod-sampler", daemon=True)

    def __enter__(self) -> PodSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            for pod in self._pods():
                if not pod.ready:
                    continue
                try:
                    value = self._read(pod)
                except OSError:
                    continue  # a pod going away; the next round skips it
                self.samples.append((time.monotonic(), pod.name, value))

    def _window(self, since: float, until: float | None) -> dict[str, list[tuple[float, float]]]:
        until = time.monotonic() if until is None else until
        by_pod: dict[str, list[tuple[float, float]]] = {}
        for at, pod, value in list(self.samples):
            if since <= at <= until:
                by_pod.setdefault(pod, []).append((at, value))
        return by_pod

    def averages(self, since: float, until: float | None = None) -> dict[str, float]:
        """Each pod's mean over the window (``avg_over_time`` of a gauge)."""
        return {
            pod: sum(v for _, v in points) / len(points)
            for pod, points in self._window(since, until).items()
        }

    def rates(self, since: float, until: float | None = None) -> dict[str, float]:
        """Each pod's increase per second over the window (``rate`` of a counter, CPU)."""
        return {
            pod: (points[-1][1] - points[0][1]) / (points[-1][0] - points[0][0])
            for pod, points in self._window(since, until).items()
            if len(points) >= 2 and points[-1][0] > points[0][0]
        }
