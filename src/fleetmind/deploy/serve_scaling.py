"""How a served fleet follows its load: the HPA, the adapter rule that feeds it, the scrape.

The HorizontalPodAutoscaler holds each replica's wait at ``--target-wait-ms``: the
round trip of the server's probe of its own health service, which is how long a new
call waits before the replica takes it up (``fleetmind_inference_wait_seconds``,
fleetmind.serve.shedding). It is a few ms while a replica keeps up and climbs
toward the servers' ``--max-wait-ms`` as it saturates, whatever saturates it (its
core, a CPU limit, the GIL, a noisy neighbour); the calls-in-flight gauge and CPU
use do not say that (docs/deploy.md, Autoscaling). The HPA reads it as a ``Pods``
metric through the custom metrics API, which the Prometheus Adapter serves from
:func:`adapter_rule` (each pod's mean over a minute of what Prometheus scraped
through the ServiceMonitor). CPU use stays a second metric: the HPA takes the
largest size its metrics ask for, and CPU, unlike the wait, is proportional to the
load, so it holds the size the load needs when the wait reads near 0.
"""

from __future__ import annotations

from fleetmind.deploy.pod_parts import Obj
from fleetmind.deploy.serve_pod import labels, metadata
from fleetmind.deploy.serve_spec import ServeDeployment
from fleetmind.serve.metrics import WAIT_METRIC

SCRAPE_INTERVAL = "15s"
ADAPTER_WINDOW = "1m"
"""The window each pod's wait is averaged over (four scrapes)."""


def wait_target(dep: ServeDeployment) -> str:
    """``--target-wait-ms`` as the quantity of seconds that the HPA compares with."""
    return f"{dep.config.target_wait_ms:g}m"


def autoscaler(dep: ServeDeployment) -> Obj | None:
    """HPA on each replica's wait, then CPU use; None when --replicas fixes the size."""
    cfg = dep.config
    if cfg.replicas is not None:
        return None
    wait = {
        "type": "Pods",
        "pods": {
            "metric": {"name": WAIT_METRIC},
            "target": {"type": "AverageValue", "averageValue": wait_target(dep)},
        },
    }
    cpu = {
        "type": "Resource",
        "resource": {
            "name": "cpu",
            "target": {"type": "AverageValue", "averageValue": cfg.target_cpu},
        },
    }
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(dep, cfg.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": cfg.name},
            "minReplicas": cfg.min_replicas,
            "maxReplicas": cfg.max_replicas,
            "metrics": [wait, cpu],
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 0,
                    "policies": [{"type": "Percent", "value": 100, "periodSeconds": 15}],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 60}],
                },
            },
        },
    }


def adapter_rule() -> Obj:
    """The Prometheus Adapter's rule that serves the wait to the HPA.

    The series are those the ServiceMonitor scrapes (labelled with the pod and its
    namespace by the Prometheus Operator); the adapter serves each pod's mean over
    :data:`ADAPTER_WINDOW` under the metric's own name. ``max`` by pod rather than
    ``sum``: a pod scraped twice is not counted twice.
    """
    return {
        "seriesQuery": f'{WAIT_METRIC}{{namespace!="",pod!=""}}',
        "resources": {
            "overrides": {
                "namespace": {"resource": "namespace"},
                "pod": {"resource": "pod"},
            }
        },
        "name": {"matches": f"^{WAIT_METRIC}$", "as": WAIT_METRIC},
        "metricsQuery": (
            f"max(avg_over_time(<<.Series>>{{<<.LabelMatchers>>}}[{ADAPTER_WINDOW}])) "
            "by (<<.GroupBy>>)"
        ),
    }


def adapter_values() -> Obj:
    """Values of the prometheus-community/prometheus-adapter Helm chart that add the rule
    (without Helm, ``rules.custom`` is the ``rules`` list of the adapter's --config)."""
    return {"rules": {"custom": [adapter_rule()]}}


def service_monitor(dep: ServeDeployment) -> Obj:
    """Prometheus Operator: scrape ``/metrics`` on the Service's metrics port."""
    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "ServiceMonitor",
        "metadata": metadata(dep, dep.config.name),
        "spec": {
            "selector": {"matchLabels": labels(dep)},
            "endpoints": [{"port": "metrics", "path": "/metrics", "interval": SCRAPE_INTERVAL}],
        },
    }
