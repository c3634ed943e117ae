"""Prometheus metrics of an edge client: where its decisions ran, why, and its estimates.

========================================  ==========================================
``fleetmind_edge_decisions_total``        decisions by ``place`` (``local`` or the
                                          target) and ``reason`` (``faster``,
                                          ``deadline``, ``no_remote``, ``fallback``)
``fleetmind_edge_fallbacks_total``        remote calls that failed or came too late,
                                          by ``target`` and ``cause`` (``late``,
                                          ``failed``); the decision ran locally
``fleetmind_edge_expected_time_seconds``  E[T] of each ``place`` (moving averages)
``fleetmind_edge_round_trip_seconds``     network part of a target's round trip (t_0j)
``fleetmind_edge_link_up``                1 while a target answers, 0 while it is down
``fleetmind_edge_decision_seconds``       histogram of decision latency by ``place``
========================================  ==========================================
"""

from __future__ import annotations

import math
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

LATENCY_BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0, 2.0)


class EdgeMetrics:
    """The metrics above, in their own registry (serve it with a MetricsPage)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        reg = self.registry
        self.decisions = Counter(
            "fleetmind_edge_decisions", "Decisions by place and reason.", ["place", "reason"],
            registry=reg,
        )  # fmt: skip
        self.fallbacks = Counter(
            "fleetmind_edge_fallbacks", "Remote calls that failed or were late; ran locally.",
            ["target", "cause"], registry=reg,
        )  # fmt: skip
        self.expected = Gauge(
            "fleetmind_edge_expected_time_seconds", "E[T] of each place.", ["place"],
            registry=reg,
        )  # fmt: skip
        self.round_trip = Gauge(
            "fleetmind_edge_round_trip_seconds", "Network part of a target's round trip.",
            ["target"], registry=reg,
        )  # fmt: skip
        self.link_up = Gauge(
            "fleetmind_edge_link_up", "1 while a target answers.", ["target"], registry=reg
        )
        self.latency = Histogram(
            "fleetmind_edge_decision_seconds", "Decision latency by place.", ["place"],
            buckets=LATENCY_BUCKETS, registry=reg,
        )  # fmt: skip

        self._children: dict[tuple[str, ...], Any] = {}

    def _child(self, family: Any, *labels: str) -> Any:
        """A family's child for ``labels``, looked up once (a lookup costs microseconds)."""
        key = (family._name, *labels)
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = family.labels(*labels)
        return child

    def decided(self, place: str, reason: str, latency_s: float) -> None:
        """Count one decision and its latency."""
        self._child(self.decisions, place, reason).inc()
        self._child(self.latency, place).observe(latency_s)

    def estimate(self, place: str, expected_s: float, transfer_s: float | None) -> None:
        """Publish a place's E[T] (and a target's network round trip)."""
        if math.isfinite(expected_s):
            self._child(self.expected, place).set(expected_s)
        if transfer_s is not None and math.isfinite(transfer_s):
            self._child(self.round_trip, place).set(transfer_s)
