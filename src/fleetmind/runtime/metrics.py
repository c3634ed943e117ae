"""Prometheus metrics of the learner (``--metrics-port``).

Every numeric field of a learner report becomes a gauge ``fleetmind_learner_<field>``
(per-actor rates carry an ``actor`` label), served on ``/metrics`` (over HTTPS and
behind a bearer token when asked, see :mod:`fleetmind.rpc.metrics_http`).
"""

from __future__ import annotations

import re
from typing import Any

from prometheus_client import CollectorRegistry, Gauge

from fleetmind.rpc.metrics_http import MetricsPage, MetricsPageConfig

_ACTOR_RATE = re.compile(r"^actor_(?P<actor>.+)_steps_per_s$")


class PrometheusExporter:
    """Serves the latest learner report as gauges on its own registry."""

    def __init__(self, page: MetricsPageConfig) -> None:
        self.registry = CollectorRegistry()
        self._gauges: dict[str, Gauge] = {}
        self._actor_rate = Gauge(
            "fleetmind_learner_actor_steps_per_s",
            "Environment steps per second of each actor",
            ["actor"],
            registry=self.registry,
        )
        self._page = MetricsPage(self.registry, page)
        self.port = self._page.port

    def update(self, record: dict[str, Any]) -> None:
        """Set one gauge per numeric field of ``record``."""
        for key, value in record.items():
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            match = _ACTOR_RATE.match(key)
            if match:
                self._actor_rate.labels(actor=match.group("actor")).set(value)
                continue
            name = "fleetmind_learner_" + re.sub(r"[^a-zA-Z0-9_]", "_", key)
            gauge = self._gauges.get(name)
            if gauge is None:
                gauge = Gauge(name, f"learner report field {key}", registry=self.registry)
                self._gauges[name] = gauge
            gauge.set(float(value))

    def close(self) -> None:
        """Stop serving."""
        self._page.close()


def listen_host(listen: str) -> str:
    """The host part of a gRPC listen address (``127.0.0.1`` for a unix socket)."""
    if listen.startswith("unix:"):
        return "127.0.0.1"
    host = listen.rpartition(":")[0].strip("[]")
    return host or "0.0.0.0"
