"""Prometheus metrics of the inference server (one registry per server).

==========================================  =======================================
``fleetmind_inference_requests_total``       ModelInfer calls by model and status
``fleetmind_inference_failures_total``       the calls among them that failed
``fleetmind_inference_latency_seconds``      handler time per call, by model
``fleetmind_inference_queue_seconds``        time a request waited for its batch
``fleetmind_inference_batch_rows``           rows per forward pass
``fleetmind_inference_in_flight``            calls being handled now
==========================================  =======================================

Requests for models that are not served count under model ``"-"`` so that
callers cannot grow the label set.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from wsgiref.simple_server import WSGIServer

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from fleetmind.serve.batcher import BatchObserver

logger = logging.getLogger(__name__)

UNKNOWN_MODEL = "-"
"""Label used for requests that name no served model."""

_LATENCY = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)
_ROWS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512)


class ServeMetrics:
    """The server's metrics and, when asked, the HTTP page that exposes them."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "fleetmind_inference_requests",
            "ModelInfer calls by model and gRPC status",
            ["model", "status"],
            registry=self.registry,
        )
        self.failures = Counter(
            "fleetmind_inference_failures",
            "ModelInfer calls that did not end OK",
            ["model", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "fleetmind_inference_latency_seconds",
            "Time spent handling one ModelInfer call",
            ["model"],
            buckets=_LATENCY,
            registry=self.registry,
        )
        self.queue_time = Histogram(
            "fleetmind_inference_queue_seconds",
            "Time a request waited in the queue before its batch ran",
            ["model"],
            buckets=_LATENCY,
            registry=self.registry,
        )
        self.batch_rows = Histogram(
            "fleetmind_inference_batch_rows",
            "Observation rows per forward pass",
            ["model"],
            buckets=_ROWS,
            registry=self.registry,
        )
        self.in_flight = Gauge(
            "fleetmind_inference_in_flight",
            "ModelInfer calls being handled",
            ["model"],
            registry=self.registry,
        )
        self._counted: dict[tuple[str, str], tuple[Any, Any]] = {}
        self._per_model: dict[str, tuple[Any, Any]] = {}
        self._http: WSGIServer | None = None
        self._thread: threading.Thread | None = None

    def in_flight_of(self, model: str) -> Any:
        """The in-flight gauge of ``model`` (looked up once per model)."""
        return self._model(model)[0]

    def _model(self, model: str) -> tuple[Any, Any]:
        children = self._per_model.get(model)
        if children is None:
            children = (self.in_flight.labels(model), self.latency.labels(model))
            self._per_model[model] = children
        return children

    def record(self, model: str, status: str, seconds: float) -> None:
        """Count one finished call (labelled children are looked up once, then cached)."""
        counters = self._counted.get((model, status))
        if counters is None:
            failed = self.failures.labels(model, status) if status != "OK" else None
            counters = (self.requests.labels(model, status), failed)
            self._counted[(model, status)] = counters
        counters[0].inc()
        if counters[1] is not None:
            counters[1].inc()
        self._model(model)[1].observe(seconds)

    def batch_observer(self, model: str) -> BatchObserver:
        """A batcher observer that feeds the batch and queue histograms of ``model``."""
        rows_hist = self.batch_rows.labels(model)
        queue_hist = self.queue_time.labels(model)

        def observe(rows: int, queued: list[float]) -> None:
            rows_hist.observe(rows)
            for seconds in queued:
                queue_hist.observe(seconds)

        return observe

    def serve_http(self, port: int, host: str = "0.0.0.0") -> int:
        """Expose ``/metrics`` on ``port`` (0 picks one); returns the bound port."""
        self._http, self._thread = start_http_server(port, addr=host, registry=self.registry)
        bound = int(self._http.server_address[1])
        logger.info("metrics on http://%s:%d/metrics", host, bound)
        return bound

    def close(self) -> None:
        """Stop the HTTP page."""
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
