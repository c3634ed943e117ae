"""Pieces every rendered fleetmind pod shares: security, Secret volumes, probes, quantities.

The serving Deployment and the training StatefulSet and Deployments are built from
these, so a pod of either fleet runs locked down the same way and reads its Secrets
the same way: mounted as files, referenced by name, never rendered with values.
"""

from __future__ import annotations

import re
from typing import Any

from fleetmind.core.errors import ConfigError, echo

Obj = dict[str, Any]
RUN_AS = 10001
"""The image's numeric non-root user and group."""
TLS_MOUNT = "/var/run/secrets/fleetmind/tls"
TOKEN_MOUNT = "/var/run/secrets/fleetmind/token"
TOKEN_KEY = "tokens"
"""The key of the token Secret that holds the accepted tokens, one per line."""
TMP_MOUNT = "/tmp"
_QUANTITY = re.compile(r"[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?")


def check_quantity(value: str, flag: str) -> str:
    """``value`` if it is a Kubernetes quantity (500m, 2, 1Gi), else ConfigError."""
    if not _QUANTITY.fullmatch(value):
        raise ConfigError(f"{flag} {echo(value)} is not a quantity such as 500m, 2 or 1Gi")
    return value


def cores(quantity: str) -> float:
    """CPU cores of a CPU quantity (``500m`` -> 0.5)."""
    return float(quantity[:-1]) / 1000 if quantity.endswith("m") else float(quantity)


def object_metadata(name: str, labels: dict[str, str], namespace: str | None, **extra: Any) -> Obj:
    """Object metadata: name, namespace when set, ``labels``."""
    meta: Obj = {"name": name, "labels": dict(labels), **extra}
    if namespace is not None:
        meta["namespace"] = namespace
    return meta


def pod_security_context() -> Obj:
    """The pod runs as the image's numeric user, with the runtime's default seccomp."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> Obj:
    """No privilege escalation, no capability, a read-only root filesystem."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
    }


def pod_basics(grace_s: int) -> Obj:
    """Pod spec fields of every fleetmind pod: no API token, no service links, its grace."""
    return {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "terminationGracePeriodSeconds": grace_s,
        "securityContext": pod_security_context(),
    }


def tmp_volume() -> Obj:
    """A scratch ``/tmp`` beside the read-only root filesystem."""
    return {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}}


def secret_volume(volume: str, secret: str, keys: tuple[str, ...] = ()) -> Obj:
    """A Secret mounted as files (only ``keys`` when given); referenced, never rendered."""
    source: Obj = {"secretName": secret}
    if keys:
        source["items"] = [{"key": k, "path": k} for k in keys]
    return {"name": volume, "secret": source}


def token_volume(secret: str) -> Obj:
    """The token Secret's key ``tokens`` as a file under :data:`TOKEN_MOUNT`."""
    return secret_volume("token", secret, (TOKEN_KEY,))


def health_check(port: int, service: str, tls: bool) -> Obj:
    """kubelet's native gRPC probe on grpc.health.v1; a TCP connection under TLS, which
    kubelet's gRPC probe cannot speak (``port`` must then be named ``grpc``)."""
    if tls:
        return {"tcpSocket": {"port": "grpc"}}
    return {"grpc": {"port": port, "service": service}}


def spread_over_hosts(labels: dict[str, str], zones: bool = True) -> list[Obj]:
    """Pods spread over zones, then hosts; preferred, so one node still schedules."""
    keys = ("topology.kubernetes.io/zone",) if zones else ()
    return [
        {
            "maxSkew": 1,
            "topologyKey": key,
            "whenUnsatisfiable": "ScheduleAnyway",
            "labelSelector": {"matchLabels": labels},
            "matchLabelKeys": ["pod-template-hash"],
        }
        for key in (*keys, "kubernetes.io/hostname")
    ]
