"""How a served fleet follows its load: the HPA, the metric's path to it, the scrape.

The HorizontalPodAutoscaler reads ``fleetmind_inference_in_flight``, the calls a
pod is handling now, averaged over its pods: it rises with the load at once, where
CPU lags behind batching and saturates at the limit. Prometheus scrapes it
(ServiceMonitor) and the Prometheus Adapter serves it to the HPA as a per-pod
custom metric (``prometheus-adapter-values.yaml``: a Helm values file for its
chart). docs/deploy.md shows the KEDA ScaledObject that could feed it instead.
"""

from __future__ import annotations

from typing import Any

from fleetmind.deploy.serve_pod import Obj, labels, metadata
from fleetmind.deploy.serve_spec import ServeDeployment

IN_FLIGHT_METRIC = "fleetmind_inference_in_flight"
"""The server's gauge of ModelInfer calls being handled (fleetmind.serve.metrics)."""
SCRAPE_INTERVAL = "15s"


def autoscaler(dep: ServeDeployment) -> Obj | None:
    """HPA on in-flight calls per pod; None when --replicas fixes the size."""
    cfg = dep.config
    if cfg.replicas is not None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": metadata(dep, cfg.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": cfg.name},
            "minReplicas": cfg.min_replicas,
            "maxReplicas": cfg.max_replicas,
            "metrics": [
                {
                    "type": "Pods",
                    "pods": {
                        "metric": {"name": IN_FLIGHT_METRIC},
                        "target": {
                            "type": "AverageValue",
                            "averageValue": str(cfg.target_in_flight),
                        },
                    },
                }
            ],
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


def adapter_values() -> dict[str, Any]:
    """Prometheus Adapter chart values: the rule that turns the gauge into a pod metric.

    Averaged over one minute, so that one scrape's spike does not start a pod.
    """
    rule = {
        "seriesQuery": f'{IN_FLIGHT_METRIC}{{namespace!="",pod!=""}}',
        "resources": {
            "overrides": {"namespace": {"resource": "namespace"}, "pod": {"resource": "pod"}}
        },
        "name": {"matches": f"^{IN_FLIGHT_METRIC}$", "as": IN_FLIGHT_METRIC},
        "metricsQuery": (
            "sum(avg_over_time(<<.Series>>{<<.LabelMatchers>>}[1m])) by (<<.GroupBy>>)"
        ),
    }
    return {"rules": {"default": False, "custom": [rule]}}
