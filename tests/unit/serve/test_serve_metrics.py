"""The serving metrics page: names, labels and values as Prometheus reads them."""

from __future__ import annotations

from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from fleetmind.serve.metrics import UNKNOWN_MODEL, ServeMetrics


def samples(metrics: ServeMetrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    page = generate_latest(metrics.registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
    }


def test_counts_histograms_and_in_flight() -> None:
    metrics = ServeMetrics()
    observe = metrics.batch_observer("m")
    metrics.started("m")
    metrics.started("m")
    metrics.record("m", "OK", 0.0005)  # on a bucket bound: counts in that bucket
    metrics.record("m", "INVALID_ARGUMENT", 0.003)
    metrics.record(UNKNOWN_MODEL, "NOT_FOUND", 0.0001, started=False)
    metrics.started("m")  # still running
    observe(3, [0.0001, 0.002, 7.0])
    got = samples(metrics)
    m = (("model", "m"),)
    assert got[("fleetmind_inference_requests_total", (("model", "m"), ("status", "OK")))] == 1
    failed = (("model", "m"), ("status", "INVALID_ARGUMENT"))
    assert got[("fleetmind_inference_failures_total", failed)] == 1
    assert ("fleetmind_inference_failures_total", (("model", "m"), ("status", "OK"))) not in got
    unknown = (("model", "-"), ("status", "NOT_FOUND"))
    assert got[("fleetmind_inference_requests_total", unknown)] == 1
    assert got[("fleetmind_inference_in_flight", m)] == 1
    latency = "fleetmind_inference_latency_seconds"
    assert got[(f"{latency}_bucket", (("le", "0.0005"), ("model", "m")))] == 1
    assert got[(f"{latency}_bucket", (("le", "0.005"), ("model", "m")))] == 2
    assert got[(f"{latency}_bucket", (("le", "+Inf"), ("model", "m")))] == 2
    assert got[(f"{latency}_count", m)] == 2
    assert abs(got[(f"{latency}_sum", m)] - 0.0035) < 1e-12
    queue = "fleetmind_inference_queue_seconds"
    assert got[(f"{queue}_bucket", (("le", "5.0"), ("model", "m")))] == 2
    assert got[(f"{queue}_count", m)] == 3
    assert got[("fleetmind_inference_batch_rows_count", m)] == 1
    assert got[("fleetmind_inference_batch_rows_bucket", (("le", "2.0"), ("model", "m")))] == 0
    assert got[("fleetmind_inference_batch_rows_bucket", (("le", "4.0"), ("model", "m")))] == 1
