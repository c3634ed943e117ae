"""How a served fleet is reached: its headless Service, NetworkPolicy and disruption budget.

A ClusterIP Service balances connections, not calls: a gRPC channel is one
long-lived HTTP/2 connection, so every call of a client would go to the one pod it
first reached. The Service is headless instead: its DNS name resolves to every
ready pod, the client balances calls over all of them (``round_robin``) and
resolves the name again whenever a connection ends; the server ends each
connection after a maximum age, so clients find new replicas within that age.
"""

from __future__ import annotations

from fleetmind.deploy.pod_parts import Obj
from fleetmind.deploy.serve_pod import labels, metadata
from fleetmind.deploy.serve_spec import GRPC_PORT, METRICS_PORT, ServeDeployment


def service(dep: ServeDeployment) -> Obj:
    """The headless Service: DNS returns one address per ready pod."""
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(dep, dep.config.name),
        "spec": {
            "clusterIP": "None",
            "selector": labels(dep),
            "ports": [
                {
                    "name": "grpc",
                    "port": GRPC_PORT,
                    "targetPort": "grpc",
                    "protocol": "TCP",
                    "appProtocol": "grpc",
                },
                {
                    "name": "metrics",
                    "port": METRICS_PORT,
                    "targetPort": "metrics",
                    "protocol": "TCP",
                    "appProtocol": "http",
                },
            ],
        },
    }


def client_target(dep: ServeDeployment) -> str:
    """The address a gRPC client in the cluster dials (``dns:///`` resolves every pod)."""
    namespace = dep.config.namespace or "default"
    return f"dns:///{dep.config.name}.{namespace}.svc.cluster.local:{GRPC_PORT}"


def network_policy(dep: ServeDeployment) -> Obj:
    """Ingress to the pods on the inference port (anyone) and the metrics port (Prometheus)."""
    monitoring = {
        "namespaceSelector": {
            "matchLabels": {"kubernetes.io/metadata.name": dep.config.monitoring_namespace}
        }
    }
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(dep, dep.config.name),
        "spec": {
            "podSelector": {"matchLabels": labels(dep)},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"ports": [{"protocol": "TCP", "port": GRPC_PORT}]},
                {"from": [monitoring], "ports": [{"protocol": "TCP", "port": METRICS_PORT}]},
            ],
        },
    }


def disruption_budget(dep: ServeDeployment) -> Obj:
    """At most one pod evicted at a time: a drain always proceeds, one pod after another."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": metadata(dep, dep.config.name),
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": labels(dep)},
            # a pod that is not Ready may be evicted even when the budget is spent
            "unhealthyPodEvictionPolicy": "AlwaysAllow",
        },
    }
