"""The pods of a training fleet: learners in a StatefulSet, actors in Deployments.

Learners are a StatefulSet because each needs what a StatefulSet gives: a stable
name (``NAME-learner-R.NAME-learner``, the address its actors dial and, for
learner 0, the rendezvous of the group) and a volume of its own that outlives the
pod (learner 0 writes the run directory there, always at ``/data/run``, so a
learner that restarts finds its run again). With several learners each gets
torchrun's variables as the local launcher gives them: ``RANK`` is the pod's
ordinal (the ``apps.kubernetes.io/pod-index`` label, Kubernetes 1.28 and later),
``MASTER_ADDR`` learner 0's stable name.

Actors hold no state and serve nothing, so they are Deployments: one per learner,
``NAME-actors-R`` feeding learner R, which ``kubectl scale`` resizes while
training runs (a new actor registers, a removed one is counted gone after
``--actor-timeout-s``). One Deployment per learner rather than one for all keeps
each actor's learner fixed in its pod template, with no arithmetic on host names.
"""

from __future__ import annotations

import math
from typing import Any

import yaml

from fleetmind.config import config_to_dict
from fleetmind.deploy.pod_parts import (
    TLS_MOUNT,
    TMP_MOUNT,
    TOKEN_KEY,
    TOKEN_MOUNT,
    Obj,
    container_security_context,
    health_check,
    object_metadata,
    pod_basics,
    secret_volume,
    spread_over_hosts,
    tmp_volume,
    token_volume,
)
from fleetmind.deploy.train_spec import (
    CONFIG_FILE,
    CONFIG_MOUNT,
    DATA_MOUNT,
    LEARNER_PORT,
    RENDEZVOUS_PORT,
    RUN_DIR,
    TrainDeployment,
    config_path,
    train_file,
)
from fleetmind.rpc.learner_service import SERVICE

POD_INDEX_LABEL = "apps.kubernetes.io/pod-index"
"""The label that carries a StatefulSet pod's ordinal (Kubernetes 1.28+)."""
LEARNER_LABEL = "fleetmind/learner"
"""On actor pods: the rank of the learner they feed."""
LEARNER_GRACE_S = 60
"""A stopping learner finishes its update and writes a final checkpoint."""
CA_KEY = "ca.crt"
_PASSED_ON = (
    "mode",
    "max_policy_lag",
    "sync_timeout_s",
    "actor_timeout_s",
    "queue_chunks",
    "collective_timeout_s",
)
"""Distributed settings ``fleetmind learner`` takes as flags (its --config file has none)."""


def labels(dep: TrainDeployment, component: str) -> dict[str, str]:
    """The labels that select the fleet's learners (``learner``) or actors (``actor``)."""
    return {
        "app.kubernetes.io/name": "fleetmind-train",
        "app.kubernetes.io/instance": dep.name,
        "app.kubernetes.io/component": component,
    }


def metadata(dep: TrainDeployment, name: str, component: str) -> Obj:
    """Object metadata: name, namespace when set, the common labels."""
    common = {**labels(dep, component), "app.kubernetes.io/managed-by": "fleetmind"}
    return object_metadata(name, common, dep.config.namespace)


def learner_name(dep: TrainDeployment) -> str:
    """The StatefulSet, and the headless Service that names its pods."""
    return f"{dep.name}-learner"


def learner_host(dep: TrainDeployment, rank: int) -> str:
    """Learner ``rank``'s stable DNS name (resolved in the fleet's namespace)."""
    return f"{learner_name(dep)}-{rank}.{learner_name(dep)}"


def actors_name(dep: TrainDeployment, rank: int) -> str:
    """The Deployment of the actors that feed learner ``rank``."""
    return f"{dep.name}-actors-{rank}"


def config_map_name(dep: TrainDeployment) -> str:
    """The ConfigMap that holds the learners' ``--config`` file."""
    return f"{dep.name}-train"


def run_claim(dep: TrainDeployment) -> str:
    """The claim that holds the run directory: learner 0's, made from the template."""
    return f"data-{learner_name(dep)}-0"


def config_map(dep: TrainDeployment) -> Obj:
    """The run's settings as ``fleetmind train --config`` reads them."""
    text = yaml.safe_dump(train_file(dep), sort_keys=False)
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": metadata(dep, config_map_name(dep), "learner"),
        "data": {CONFIG_FILE: text},
    }


def learner_args(dep: TrainDeployment) -> list[str]:
    """``fleetmind learner``'s arguments: the settings file, the run directory on the
    volume, and the distributed settings (which the settings file does not carry)."""
    args = ["learner", "--config", str(config_path()), "--run-dir", RUN_DIR, "--no-progress"]
    dist = config_to_dict(dep.dist)
    for key in _PASSED_ON:
        if dist[key] is not None:
            args += [f"--{key.replace('_', '-')}", str(dist[key])]
    return args


def learner_env(dep: TrainDeployment) -> list[Obj]:
    """The learner's variables: ``FLEETMIND_*`` options of ``fleetmind learner``, and
    torchrun's when there are several learners."""
    cfg = dep.config
    env: dict[str, str] = {"FLEETMIND_LISTEN": f"0.0.0.0:{LEARNER_PORT}"}
    if cfg.token_secret is not None:
        env["FLEETMIND_TOKEN_FILE"] = f"{TOKEN_MOUNT}/{TOKEN_KEY}"
    if cfg.tls_secret is not None:
        env["FLEETMIND_TLS_CERT"] = f"{TLS_MOUNT}/tls.crt"
        env["FLEETMIND_TLS_KEY"] = f"{TLS_MOUNT}/tls.key"
    if cfg.insecure:
        env["FLEETMIND_INSECURE"] = "1"
    env["MPLCONFIGDIR"] = f"{TMP_MOUNT}/matplotlib"  # the root filesystem is read-only
    out: list[Obj] = [{"name": k, "value": v} for k, v in env.items()]
    if dep.dist.learners > 1:
        index = f"metadata.labels['{POD_INDEX_LABEL}']"
        out.append({"name": "RANK", "valueFrom": {"fieldRef": {"fieldPath": index}}})
        torchrun = {
            "WORLD_SIZE": str(dep.dist.learners),
            "LOCAL_RANK": "0",  # one learner per pod
            "LOCAL_WORLD_SIZE": "1",
            "MASTER_ADDR": learner_host(dep, 0),
            "MASTER_PORT": str(RENDEZVOUS_PORT),
        }
        out += [{"name": k, "value": v} for k, v in torchrun.items()]
    return out


def learner_probes(dep: TrainDeployment) -> Obj:
    """gRPC health of the learner (grpc.health.v1, SERVING once it listens).

    A learner listens once the group has met and the run is set up, which may take
    the whole ``--collective-timeout-s``: the startup probe waits that long and more.
    Liveness is lenient: an update holds the learner's event loop for a while.
    """
    tls = dep.config.tls_secret is not None
    startup_s = dep.dist.collective_timeout_s + 300
    return {
        "startupProbe": {
            **health_check(LEARNER_PORT, "", tls),
            "periodSeconds": 5,
            "failureThreshold": math.ceil(startup_s / 5),
        },
        "readinessProbe": {
            **health_check(LEARNER_PORT, SERVICE.full_name, tls),
            "periodSeconds": 5,
            "timeoutSeconds": 2,
            "failureThreshold": 2,
        },
        "livenessProbe": {
            **health_check(LEARNER_PORT, "", tls),
            "periodSeconds": 20,
            "timeoutSeconds": 10,
            "failureThreshold": 6,
        },
    }


def learner_container(dep: TrainDeployment) -> Obj:
    """``fleetmind learner`` on the run directory of its volume."""
    cfg = dep.config
    mounts: list[Obj] = [
        {"name": "data", "mountPath": DATA_MOUNT},
        {"name": "config", "mountPath": CONFIG_MOUNT, "readOnly": True},
        {"name": "tmp", "mountPath": TMP_MOUNT},
    ]
    mounts += _secret_mounts(dep)
    ports: list[Obj] = [{"name": "grpc", "containerPort": LEARNER_PORT, "protocol": "TCP"}]
    if dep.dist.learners > 1:
        ports.append({"name": "rendezvous", "containerPort": RENDEZVOUS_PORT, "protocol": "TCP"})
    return {
        "name": "learner",
        "image": cfg.image,
        "imagePullPolicy": "IfNotPresent",
        "args": learner_args(dep),
        "env": learner_env(dep),
        "ports": ports,
        **learner_probes(dep),
        "resources": _resources(cfg.learner_cpu, cfg.learner_memory),
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
    }


def learner_set(dep: TrainDeployment) -> Obj:
    """The learners: stable names, a volume each, all started at once."""
    cfg = dep.config
    claim: Obj = {
        "metadata": {"name": "data"},
        "spec": {
            "accessModes": ["ReadWriteOnce"],
            "resources": {"requests": {"storage": cfg.storage_size}},
        },
    }
    if cfg.storage_class is not None:
        claim["spec"]["storageClassName"] = cfg.storage_class
    volumes = [
        {"name": "config", "configMap": {"name": config_map_name(dep)}},
        tmp_volume(),
        *_secret_volumes(dep, learner=True),
    ]
    return {
        "apiVersion": "apps/v1",
        "kind": "StatefulSet",
        "metadata": metadata(dep, learner_name(dep), "learner"),
        "spec": {
            "serviceName": learner_name(dep),
            "replicas": dep.dist.learners,
            # the group meets only once every learner runs: none may wait for another
            "podManagementPolicy": "Parallel",
            "selector": {"matchLabels": labels(dep, "learner")},
            "persistentVolumeClaimRetentionPolicy": {
                "whenDeleted": "Retain",
                "whenScaled": "Retain",
            },
            "template": {
                "metadata": {
                    "labels": labels(dep, "learner"),
                    "annotations": {"kubectl.kubernetes.io/default-container": "learner"},
                },
                "spec": {
                    **pod_basics(LEARNER_GRACE_S),
                    "containers": [learner_container(dep)],
                    "volumes": volumes,
                },
            },
            "volumeClaimTemplates": [claim],
        },
    }


def actor_env(dep: TrainDeployment, rank: int) -> dict[str, str]:
    """``FLEETMIND_*`` options of ``fleetmind actor`` for the actors of learner ``rank``."""
    cfg = dep.config
    env = {
        "FLEETMIND_LEARNER": f"{learner_host(dep, rank)}:{LEARNER_PORT}",
        "FLEETMIND_ENV_ID": dep.train.env_id,
        "FLEETMIND_ENVS": str(dep.envs_per_actor),
    }
    if cfg.token_secret is not None:
        env["FLEETMIND_TOKEN_FILE"] = f"{TOKEN_MOUNT}/{TOKEN_KEY}"
    if cfg.tls_secret is not None:
        env["FLEETMIND_TLS_CA"] = f"{TLS_MOUNT}/{CA_KEY}"
    return env


def actor_deployment(dep: TrainDeployment, rank: int) -> Obj:
    """The actors of learner ``rank``: scale them with ``kubectl scale``.

    No probes: an actor serves nothing, so nothing is routed by its readiness; it
    retries the learner with backoff by itself and exits (and is restarted) on an
    error, which is what a liveness probe would add.
    """
    cfg = dep.config
    selector = {**labels(dep, "actor"), LEARNER_LABEL: str(rank)}
    container: Obj = {
        "name": "actor",
        "image": cfg.image,
        "imagePullPolicy": "IfNotPresent",
        "args": ["actor"],
        "env": [{"name": k, "value": v} for k, v in actor_env(dep, rank).items()],
        "resources": _resources(cfg.actor_cpu, cfg.actor_memory),
        "securityContext": container_security_context(),
        "volumeMounts": [{"name": "tmp", "mountPath": TMP_MOUNT}, *_secret_mounts(dep)],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": metadata(dep, actors_name(dep, rank), "actor"),
        "spec": {
            "replicas": dep.actors_of(rank),
            "selector": {"matchLabels": selector},
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    **pod_basics(10),
                    "topologySpreadConstraints": spread_over_hosts(selector),
                    "containers": [container],
                    "volumes": [tmp_volume(), *_secret_volumes(dep, learner=False)],
                },
            },
        },
    }


def _resources(cpu: str, memory: str) -> Obj:
    return {"requests": {"cpu": cpu, "memory": memory}, "limits": {"cpu": cpu, "memory": memory}}


def _secret_mounts(dep: TrainDeployment) -> list[Obj]:
    out = []
    if dep.config.tls_secret is not None:
        out.append({"name": "tls", "mountPath": TLS_MOUNT, "readOnly": True})
    if dep.config.token_secret is not None:
        out.append({"name": "token", "mountPath": TOKEN_MOUNT, "readOnly": True})
    return out


def _secret_volumes(dep: TrainDeployment, *, learner: bool) -> list[Any]:
    """Learners mount the TLS key pair, actors only the CA that signed it."""
    out = []
    if dep.config.tls_secret is not None:
        keys = ("tls.crt", "tls.key") if learner else (CA_KEY,)
        out.append(secret_volume("tls", dep.config.tls_secret, keys))
    if dep.config.token_secret is not None:
        out.append(token_volume(dep.config.token_secret))
    return out
