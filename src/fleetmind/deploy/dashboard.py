"""A Grafana dashboard of the serving metrics (fleetmind.serve.metrics), as data."""

from __future__ import annotations

from typing import Any

DASHBOARD_UID = "fleetmind-serve"

_PANELS: tuple[tuple[str, str, str, str], ...] = (
    # title, unit, legend, PromQL
    (
        "Calls per second by status",
        "reqps",
        "{{status}}",
        "sum by (status) (rate(fleetmind_inference_requests_total{$sel}[1m]))",
    ),
    (
        "Failed calls per second",
        "reqps",
        "{{status}}",
        "sum by (status) (rate(fleetmind_inference_failures_total{$sel}[1m]))",
    ),
    (
        "Calls in flight per pod",
        "short",
        "{{pod}}",
        "sum by (pod) (fleetmind_inference_in_flight{$sel})",
    ),
    (
        "Latency p50 / p99",
        "s",
        "{{q}}",
        "label_replace(histogram_quantile(0.5, sum by (le) (rate("
        'fleetmind_inference_latency_seconds_bucket{$sel}[1m]))), "q", "p50", "", "") or '
        "label_replace(histogram_quantile(0.99, sum by (le) (rate("
        'fleetmind_inference_latency_seconds_bucket{$sel}[1m]))), "q", "p99", "", "")',
    ),
    (
        "Queue wait p99",
        "s",
        "p99",
        "histogram_quantile(0.99, sum by (le) "
        "(rate(fleetmind_inference_queue_seconds_bucket{$sel}[1m])))",
    ),
    (
        "Rows per forward pass (mean)",
        "short",
        "{{model}}",
        "sum by (model) (rate(fleetmind_inference_batch_rows_sum{$sel}[1m])) / "
        "sum by (model) (rate(fleetmind_inference_batch_rows_count{$sel}[1m]))",
    ),
    (
        "Wait before a call is taken up, 1m mean per pod (the autoscaler's metric)",
        "s",
        "{{pod}}",
        "max by (pod) (avg_over_time(fleetmind_inference_wait_seconds{$sel}[1m]))",
    ),
    (
        "CPU per pod (the autoscaler's second metric)",
        "short",
        "{{pod}}",
        'sum by (pod) (rate(container_cpu_usage_seconds_total{namespace="$namespace", '
        'pod=~"$service-.*", container="server"}[1m]))',
    ),
    (
        "Replicas scraped",
        "short",
        "pods",
        "count(count by (pod) (fleetmind_inference_in_flight{$sel}))",
    ),
)

SELECTOR = 'namespace="$namespace", service="$service"'


def dashboard() -> dict[str, Any]:
    """The dashboard: one time series panel per metric, for one namespace and Service."""
    panels = []
    for index, (title, unit, legend, query) in enumerate(_PANELS):
        panels.append(
            {
                "id": index + 1,
                "type": "timeseries",
                "title": title,
                "datasource": {"type": "prometheus", "uid": "${datasource}"},
                "gridPos": {"h": 8, "w": 12, "x": 12 * (index % 2), "y": 8 * (index // 2)},
                "fieldConfig": {"defaults": {"unit": unit}, "overrides": []},
                "targets": [
                    {
                        "refId": "A",
                        "expr": query.replace("$sel", SELECTOR),
                        "legendFormat": legend,
                    }
                ],
            }
        )
    return {
        "uid": DASHBOARD_UID,
        "title": "fleetmind serving",
        "tags": ["fleetmind"],
        "timezone": "browser",
        "schemaVersion": 39,
        "refresh": "10s",
        "time": {"from": "now-1h", "to": "now"},
        "templating": {
            "list": [
                {"name": "datasource", "type": "datasource", "query": "prometheus"},
                {
                    "name": "namespace",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": "label_values(fleetmind_inference_in_flight, namespace)",
                },
                {
                    "name": "service",
                    "type": "query",
                    "datasource": {"type": "prometheus", "uid": "${datasource}"},
                    "query": (
                        'label_values(fleetmind_inference_in_flight{namespace="$namespace"}, '
                        "service)"
                    ),
                },
            ]
        },
        "panels": panels,
    }


def series_names() -> set[str]:
    """Every fleetmind series the dashboard queries (``_total``, ``_bucket``, ... included)."""
    import re

    return {name for *_, query in _PANELS for name in re.findall(r"fleetmind_[a-z_]+", query)}
