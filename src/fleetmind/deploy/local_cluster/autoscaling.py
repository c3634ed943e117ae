"""The autoscaler's view of the one-machine cluster: pods' metrics as the HPA reads them.

A ``Pods`` metric reaches the HPA through Prometheus and the Prometheus Adapter,
whose rule (``prometheus-adapter-values.yaml``) is, per pod::

    sum(avg_over_time(METRIC{pod="..."}[1m])) by (pod)

:class:`PodMetricSampler` computes the same from the pods' own metrics pages:
it scrapes every Ready pod of a workload every ``interval_s`` and averages each
pod's samples (summed over the series, e.g. models) over a window. Prometheus
scrapes every 15 s over a 1-minute window; a test compresses both (e.g. 0.2 s
over 3 s), which averages more samples and changes nothing else.
:func:`desired_replicas` is the HPA's rule for an ``AverageValue`` target.
"""

from __future__ import annotations

import math
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass

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
class PodsTarget:
    """An HPA's ``Pods`` metric and its ``AverageValue`` target."""

    metric: str
    average: float
    min_replicas: int
    max_replicas: int


def hpa_target(manifests: Manifests, workload: str) -> PodsTarget:
    """The ``Pods`` metric target of the HPA that scales ``workload``."""
    for hpa in manifests.of_kind("HorizontalPodAutoscaler"):
        spec = hpa["spec"]
        if spec["scaleTargetRef"]["name"] != workload:
            continue
        for metric in spec.get("metrics", []):
            if metric.get("type") == "Pods":
                pods = metric["pods"]
                return PodsTarget(
                    pods["metric"]["name"],
                    float(pods["target"]["averageValue"]),
                    int(spec.get("minReplicas", 1)),
                    int(spec["maxReplicas"]),
                )
    raise ConfigError(f"no HorizontalPodAutoscaler scales {workload!r} on a Pods metric")


def desired_replicas(current: int, per_pod: Mapping[str, float], target: float) -> int:
    """The HPA's answer: ``ceil(current * mean / target)``, unchanged within the tolerance."""
    if not per_pod:
        return current
    ratio = sum(per_pod.values()) / len(per_pod) / target
    if abs(ratio - 1.0) <= TOLERANCE:
        return current
    return max(1, math.ceil(current * ratio))


class PodMetricSampler:
    """Samples a metric of every Ready pod that ``pods()`` lists, on a thread."""

    def __init__(
        self,
        pods: Callable[[], list[Pod]],
        metric: str,
        port: int,
        interval_s: float = 0.2,
    ) -> None:
        self.metric = metric
        self.port = port
        self.interval_s = interval_s
        self.samples: list[tuple[float, str, float]] = []
        """(monotonic time, pod name, value)."""
        self._pods = pods
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="metric-sampler", daemon=True)

    def __enter__(self) -> PodMetricSampler:
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
                    value = metric_sum(scrape(pod.address, self.port), self.metric)
                except OSError:
                    continue  # a pod going away; the next round skips it
                self.samples.append((time.monotonic(), pod.name, value))

    def averages(self, since: float, until: float | None = None) -> dict[str, float]:
        """Each pod's mean over the samples in ``[since, until]`` (avg_over_time)."""
        until = time.monotonic() if until is None else until
        sums: dict[str, list[float]] = {}
        for at, pod, value in list(self.samples):
            if since <= at <= until:
                sums.setdefault(pod, []).append(value)
        return {pod: sum(v) / len(v) for pod, v in sums.items()}
