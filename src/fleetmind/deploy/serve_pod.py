"""The Deployment of a served fleet: the pod, its probes, its security, its model volume.

The model reaches each pod on a volume (a PersistentVolumeClaim mounted read-only
at ``/models``) rather than in an init container: the server already rescans its
PATH and swaps in new checkpoints and version folders between two requests, so a
new model version rolls out by being written to the volume, with no pod restarted
and no connection dropped; and the training fleet can write its run directory to
the same claim. docs/deploy.md describes the image-based alternative.
"""

from __future__ import annotations

import math
from typing import Any

from fleetmind.deploy.pod_parts import (
    TLS_MOUNT,
    TOKEN_KEY,
    TOKEN_MOUNT,
    Obj,
    container_security_context,
    cores,
    health_check,
    object_metadata,
    pod_basics,
    secret_volume,
    spread_over_hosts,
    tmp_volume,
    token_volume,
)
from fleetmind.deploy.serve_spec import GRPC_PORT, METRICS_PORT, MODELS_MOUNT, ServeDeployment

GRACE_MARGIN_S = 15
"""Seconds the pod gets beyond the server's drain (interpreter exit, metrics page)."""
INFERENCE_SERVICE = "inference.GRPCInferenceService"
"""Health service name that reads SERVING once every model is loaded and warmed up."""


def labels(dep: ServeDeployment) -> dict[str, str]:
    """The labels that select this fleet's pods."""
    return {
        "app.kubernetes.io/name": "fleetmind-serve",
        "app.kubernetes.io/instance": dep.config.name,
    }


def metadata(dep: ServeDeployment, name: str, **extra: Any) -> Obj:
    """Object metadata: name, namespace when set, the common labels."""
    common = {
        **labels(dep),
        "app.kubernetes.io/component": "inference",
        "app.kubernetes.io/managed-by": "fleetmind",
    }
    return object_metadata(name, common, dep.config.namespace, **extra)


def model_claim_name(dep: ServeDeployment) -> str:
    """The PersistentVolumeClaim that holds the models."""
    return dep.config.model_claim or f"{dep.config.name}-models"


def server_env(dep: ServeDeployment) -> dict[str, str]:
    """``FLEETMIND_*`` variables of the server: each one an option ``fleetmind serve`` reads."""
    cfg = dep.config
    env = {
        "FLEETMIND_HOST": "0.0.0.0",
        "FLEETMIND_PORT": str(GRPC_PORT),
        "FLEETMIND_METRICS_PORT": str(METRICS_PORT),
        "FLEETMIND_GRACE_S": f"{cfg.grace_s:g}",
        "FLEETMIND_TORCH_THREADS": str(max(1, math.floor(cores(cfg.cpu)))),
    }
    if dep.served.kind == "run":  # named as it was on the training machine, not "models"
        env["FLEETMIND_MODEL_NAME"] = dep.served.models[0]
    if cfg.tls_secret is not None:
        env["FLEETMIND_TLS_CERT"] = f"{TLS_MOUNT}/tls.crt"
        env["FLEETMIND_TLS_KEY"] = f"{TLS_MOUNT}/tls.key"
    if cfg.token_secret is not None:
        env["FLEETMIND_TOKEN_FILE"] = f"{TOKEN_MOUNT}/{TOKEN_KEY}"
    if cfg.insecure:
        env["FLEETMIND_INSECURE"] = "1"
    if "max_connection_age_s" in dep.server_options:
        # clients re-resolve the headless Service when their connection ages out
        env["FLEETMIND_MAX_CONNECTION_AGE_S"] = "30"
    return env


def probes(dep: ServeDeployment) -> Obj:
    """Startup, readiness and liveness: kubelet's native gRPC probes on grpc.health.v1.

    kubelet's gRPC probe speaks plaintext only; with TLS the probes open a TCP
    connection instead (the server listens only once its models are loaded, and stops
    listening when it drains).
    """

    def check(service: str) -> Obj:
        return health_check(GRPC_PORT, service, dep.config.tls_secret is not None)

    return {
        # loading and warming up the models: up to 5 minutes
        "startupProbe": {**check(""), "periodSeconds": 2, "failureThreshold": 150},
        "readinessProbe": {
            **check(INFERENCE_SERVICE),
            "periodSeconds": 2,
            "timeoutSeconds": 1,
            "failureThreshold": 1,
            "successThreshold": 1,
        },
        "livenessProbe": {
            **check(""),
            "periodSeconds": 10,
            "timeoutSeconds": 5,
            "failureThreshold": 3,
        },
    }


def container(dep: ServeDeployment) -> Obj:
    """The server container: ``fleetmind serve /models``, configured by environment."""
    cfg = dep.config
    mounts: list[Obj] = [
        {"name": "models", "mountPath": MODELS_MOUNT, "readOnly": True},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    if cfg.tls_secret is not None:
        mounts.append({"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True})
    if cfg.token_secret is not None:
        mounts.append({"name": "token", "mountPath": TOKEN_MOUNT, "readOnly": True})
    cpu_limit = f"{cores(cfg.cpu) * 2:g}"
    return {
        "name": "server",
        "image": cfg.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["serve", MODELS_MOUNT],
        "env": [{"name": k, "value": v} for k, v in server_env(dep).items()],
        "ports": [
            {"name": "grpc", "containerPort": GRPC_PORT, "protocol": "TCP"},
            {"name": "metrics", "containerPort": METRICS_PORT, "protocol": "TCP"},
        ],
        **probes(dep),
        "resources": {
            "requests": {"cpu": cfg.cpu, "memory": cfg.memory},
            "limits": {"cpu": cpu_limit, "memory": cfg.memory},
        },
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }


def volumes(dep: ServeDeployment) -> list[Obj]:
    """The model claim, a scratch /tmp, and the Secrets (referenced, never rendered)."""
    cfg = dep.config
    out: list[Obj] = [
        {
            "name": "models",
            "persistentVolumeClaim": {"claimName": model_claim_name(dep), "readOnly": True},
        },
        tmp_volume(),
    ]
    if cfg.tls_secret is not None:
        out.append(secret_volume("tls", cfg.tls_secret))
    if cfg.token_secret is not None:
        out.append(token_volume(cfg.token_secret))
    return out


def spread(dep: ServeDeployment) -> list[Obj]:
    """Replicas spread over zones, then hosts; preferred, so one node still schedules."""
    return spread_over_hosts(labels(dep))


def deployment(dep: ServeDeployment) -> Obj:
    """The Deployment: rolls one new pod in before an old one goes, never below the size."""
    cfg = dep.config
    spec: Obj = {
        "selector": {"matchLabels": labels(dep)},
        "strategy": {
            "type": "RollingUpdate",
            "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
        },
        "minReadySeconds": 5,
        "template": {
            "metadata": {
                "labels": labels(dep),
                "annotations": {"kubectl.kubernetes.io/default-container": "server"},
            },
            "spec": {
                **pod_basics(math.ceil(cfg.grace_s) + GRACE_MARGIN_S),
                "topologySpreadConstraints": spread(dep),
                "containers": [container(dep)],
                "volumes": volumes(dep),
            },
        },
    }
    if cfg.replicas is not None:  # with an autoscaler, the HPA owns the replica count
        spec = {"replicas": cfg.replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(dep, cfg.name),
        "spec": spec,
    }


def model_claim(dep: ServeDeployment) -> Obj | None:
    """The claim the models are copied into; None when --model-claim names an existing one."""
    if dep.config.model_claim is not None:
        return None
    return {
        "apiVersion": "v1",
        "kind": "PersistentVolumeClaim",
        "metadata": metadata(dep, model_claim_name(dep)),
        "spec": {
            # read by every replica, written by whoever delivers models (docs/deploy.md)
            "accessModes": ["ReadWriteMany"],
            "resources": {"requests": {"storage": dep.config.model_volume_size}},
        },
    }
