"""Prometheus metrics of the inference server (one registry per server).

==========================================  =======================================
``fleetmind_inference_requests_total``       ModelInfer calls by model and status
``fleetmind_inference_failures_total``       the calls among them that failed
``fleetmind_inference_latency_seconds``      handler time per call, by model
``fleetmind_inference_queue_seconds``        time a request waited for its batch
``fleetmind_inference_batch_rows``           rows per forward pass
``fleetmind_inference_in_flight``            calls being handled now
``fleetmind_inference_wait_seconds``         wait a new call meets before it is taken up
==========================================  =======================================

Requests for models that are not served count under model ``"-"`` so that
callers cannot grow the label set.

One server process keeps these in :class:`ServeMetrics`. The worker processes of
``fleetmind serve --workers N`` record them in :class:`SharedServeMetrics`,
``prometheus_client``'s multiprocess mode, and the parent's page sums the
workers (:func:`shared_registry`); the names, labels and buckets are the same.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator
from pathlib import Path
from typing import Any, Protocol

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from fleetmind.rpc.metrics_http import MetricsPage, MetricsPageConfig
from fleetmind.serve.batcher import BatchObserver

UNKNOWN_MODEL = "-"
"""Label used for requests that name no served model."""
WAIT_METRIC = "fleetmind_inference_wait_seconds"
"""The wait a new call meets (a gauge, no labels): what the autoscaler reads
(fleetmind.deploy.serve_scaling)."""

_LATENCY = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class MetricsRecorder(Protocol):
    """What the servicer and the batchers record per call and per batch."""

    def started(self, model: str) -> None:
        """A call for ``model`` is being handled."""

    def record(self, model: str, status: str, seconds: float, *, started: bool = True) -> None:
        """Count one finished call (``started``: it was counted by :meth:`started`)."""

    def batch_observer(self, model: str) -> BatchObserver:
        """A batcher observer that feeds the batch and queue histograms of ``model``."""

    def waited(self, seconds: float) -> None:
        """The wait a new call meets now (measured by the wait probe)."""

    def close(self) -> None:
        """Release what the recorder holds."""


_DOC = {
    "requests": "ModelInfer calls by model and gRPC status",
    "failures": "ModelInfer calls that did not end OK",
    "latency": "Time spent handling one ModelInfer call",
    "queue": "Time a request waited in the queue before its batch ran",
    "rows": "Observation rows per forward pass",
    "in_flight": "ModelInfer calls being handled",
    "wait": "Wait a new call meets before the server takes it up (the wait probe's last)",
}


class _Buckets:
    """One histogram child: a count per bucket (the last is +Inf) and the sum."""

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1  # le: upper bound inclusive
        self.total += value

    def exposed(self) -> tuple[list[tuple[str, float]], float]:
        counts, total = list(self.counts), self.total
        cumulative: list[tuple[str, float]] = []
        running = 0
        for bound, count in zip((*self.bounds, float("inf")), counts, strict=True):
            running += count
            cumulative.append(("+Inf" if bound == float("inf") else repr(float(bound)), running))
        return cumulative, total


class ServeMetrics(Collector):
    """The server's metrics and, when asked, the HTTP page that exposes them.

    Updates are plain integer and float operations on the event loop thread (a
    ``prometheus_client`` metric takes a lock and walks its buckets in Python on
    every observation, which is a measurable share of a request here); the page
    reads them through this collector when it is scraped.
    """

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self._requests: dict[tuple[str, str], int] = {}
        self._latency: dict[str, _Buckets] = {}
        self._queue: dict[str, _Buckets] = {}
        self._rows: dict[str, _Buckets] = {}
        self._in_flight: dict[str, int] = {}
        self._wait_s = 0.0
        self.registry.register(self)
        self._page: MetricsPage | None = None

    def started(self, model: str) -> None:
        """A call for ``model`` is being handled."""
        self._in_flight[model] = self._in_flight.get(model, 0) + 1

    def record(self, model: str, status: str, seconds: float, *, started: bool = True) -> None:
        """Count one finished call (``started``: it was counted by :meth:`started`)."""
        key = (model, status)
        self._requests[key] = self._requests.get(key, 0) + 1
        if started:
            self._in_flight[model] -= 1
        latency = self._latency.get(model)
        if latency is None:
            latency = self._latency[model] = _Buckets(_LATENCY)
        latency.observe(seconds)

    def batch_observer(self, model: str) -> BatchObserver:
        """A batcher observer that feeds the batch and queue histograms of ``model``."""
        rows_hist = self._rows.setdefault(model, _Buckets(_ROWS))
        queue_hist = self._queue.setdefault(model, _Buckets(_LATENCY))

        def observe(rows: int, queued: list[float]) -> None:
            rows_hist.observe(rows)
            for seconds in queued:
                queue_hist.observe(seconds)

        return observe

    def waited(self, seconds: float) -> None:
        """The wait a new call meets now (measured by the wait probe)."""
        self._wait_s = seconds

    def collect(self) -> Iterator[Metric]:
        """The metrics as Prometheus families (called by the registry on a scrape)."""
        requests = list(self._requests.items())
        total = CounterMetricFamily(
            "fleetmind_inference_requests",
            _DOC["requests"],
            labels=["model", "status"],
        )
        failures = CounterMetricFamily(
            "fleetmind_inference_failures",
            _DOC["failures"],
            labels=["model", "status"],
        )
        for (model, status), count in requests:
            total.add_metric([model, status], count)
            if status != "OK":
                failures.add_metric([model, status], count)
        yield total
        yield failures
        yield _histogram("fleetmind_inference_latency_seconds", _DOC["latency"], self._latency)
        yield _histogram("fleetmind_inference_queue_seconds", _DOC["queue"], self._queue)
        yield _histogram("fleetmind_inference_batch_rows", _DOC["rows"], self._rows)
        in_flight = GaugeMetricFamily(
            "fleetmind_inference_in_flight", _DOC["in_flight"], labels=["model"]
        )
        for model, count in list(self._in_flight.items()):
            in_flight.add_metric([model], count)
        yield in_flight
        yield GaugeMetricFamily(WAIT_METRIC, _DOC["wait"], self._wait_s)

    def serve_http(self, config: MetricsPageConfig) -> int:
        """Expose ``/metrics`` as ``config`` says (port 0 picks one); returns the bound port."""
        self._page = MetricsPage(self.registry, config)
        return self._page.port

    def close(self) -> None:
        """Stop the HTTP page."""
        if self._page is not None:
            self._page.close()
            self._page = None


def _histogram(name: str, documentation: str, children: dict[str, _Buckets]) -> Metric:
    family = HistogramMetricFamily(name, documentation, labels=["model"])
    for model, child in list(children.items()):
        buckets, total = child.exposed()
        family.add_metric([model], buckets, total)
    return family


class SharedServeMetrics:
    """The same metrics in ``prometheus_client``'s multiprocess mode (one worker's share).

    Needs ``PROMETHEUS_MULTIPROC_DIR`` set before ``prometheus_client`` was first
    imported in this process; each update then lands in this process's files in that
    folder, which :func:`shared_registry` reads. An update costs a few microseconds
    more than in :class:`ServeMetrics` (a lock and a write to a memory-mapped file).
    """

    def __init__(self) -> None:
        if not multiprocess_mode_on():
            raise RuntimeError("SharedServeMetrics needs PROMETHEUS_MULTIPROC_DIR set at import")
        labels = ["model", "status"]
        self._requests_family = Counter(
            "fleetmind_inference_requests", _DOC["requests"], labels, registry=None
        )
        self._failures_family = Counter(
            "fleetmind_inference_failures", _DOC["failures"], labels, registry=None
        )
        self._latency_family = _shared_histogram("latency_seconds", "latency", _LATENCY)
        self._queue_family = _shared_histogram("queue_seconds", "queue", _LATENCY)
        self._rows_family = _shared_histogram("batch_rows", "rows", _ROWS)
        self._in_flight_family = Gauge(
            "fleetmind_inference_in_flight",
            _DOC["in_flight"],
            ["model"],
            registry=None,
            multiprocess_mode="livesum",
        )
        # the longest wait over the workers: the one that decides whether to scale
        self._wait = Gauge(
            WAIT_METRIC,
            _DOC["wait"],
            registry=None,
            multiprocess_mode="livemax",
        )
        # Children by label values: ``labels()`` takes a lock and builds a key per call.
        self._calls: dict[tuple[str, str], tuple[Any, Any | None]] = {}
        self._per_model: dict[str, tuple[Any, Any]] = {}

    def _model(self, model: str) -> tuple[Any, Any]:
        children = self._per_model.get(model)
        if children is None:
            children = self._per_model[model] = (
                self._in_flight_family.labels(model),
                self._latency_family.labels(model),
            )
        return children

    def started(self, model: str) -> None:
        """A call for ``model`` is being handled."""
        self._model(model)[0].inc()

    def record(self, model: str, status: str, seconds: float, *, started: bool = True) -> None:
        """Count one finished call (``started``: it was counted by :meth:`started`)."""
        key = (model, status)
        counters = self._calls.get(key)
        if counters is None:
            failed = self._failures_family.labels(model, status) if status != "OK" else None
            counters = self._calls[key] = (self._requests_family.labels(model, status), failed)
        requests, failures = counters
        requests.inc()
        if failures is not None:
            failures.inc()
        in_flight, latency = self._model(model)
        if started:
            in_flight.dec()
        latency.observe(seconds)

    def batch_observer(self, model: str) -> BatchObserver:
        """A batcher observer that feeds the batch and queue histograms of ``model``."""
        rows_hist = self._rows_family.labels(model)
        queue_hist = self._queue_family.labels(model)

        def observe(rows: int, queued: list[float]) -> None:
            rows_hist.observe(rows)
            for seconds in queued:
                queue_hist.observe(seconds)

        return observe

    def waited(self, seconds: float) -> None:
        """The wait a new call meets now (measured by the wait probe)."""
        self._wait.set(seconds)

    def close(self) -> None:
        """Nothing to release: the files stay for the parent to read."""


def _shared_histogram(suffix: str, doc: str, buckets: tuple[float, ...]) -> Histogram:
    return Histogram(
        f"fleetmind_inference_{suffix}", _DOC[doc], ["model"], buckets=buckets, registry=None
    )


def multiprocess_mode_on() -> bool:
    """Whether ``prometheus_client`` in this process writes to multiprocess files."""
    from prometheus_client import values

    return bool(getattr(values.ValueClass, "_multiprocess", False))


def shared_registry(folder: Path) -> CollectorRegistry:
    """A registry whose scrape sums what every worker wrote under ``folder``."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry, path=str(folder))  # type: ignore[no-untyped-call]
    return registry
