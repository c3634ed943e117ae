"""How a served fleet follows its load: the HPA and the scrape of the serving metrics.

The HorizontalPodAutoscaler keeps the replicas' average CPU use at ``--target-cpu``
(metrics-server's ``Resource`` metric; no adapter needed). A replica is one Python
process: every call passes through its event loop, so it saturates near one core,
and its CPU use rises with its load up to there. The calls-in-flight gauge cannot
serve here: a call waits in gRPC's core until the loop takes it, and the default
batcher finishes each call it takes before the loop looks again, so the gauge read
0 on a replica that was refusing work (docs/deploy.md, Autoscaling). Prometheus
scrapes the serving metrics (ServiceMonitor) for the dashboard.
"""

from __future__ import annotations

from fleetmind.deploy.pod_parts import Obj
from fleetmind.deploy.serve_pod import labels, metadata
from fleetmind.deploy.serve_spec import ServeDeployment

SCRAPE_INTERVAL = "15s"


def autoscaler(dep: ServeDeployment) -> Obj | None:
    """HPA on the replicas' average CPU use; None when --replicas fixes the size."""
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
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "AverageValue", "averageValue": cfg.target_cpu},
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
