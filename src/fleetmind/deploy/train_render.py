"""Every object and file of a training fleet's kustomization (``fleetmind deploy train``).

Besides the pods (:mod:`fleetmind.deploy.train_pods`): the headless Service that
names the learners, NetworkPolicies that let only the fleet's actors reach the
learners' gRPC port and only learners reach each other (the rendezvous port, and
the ports gloo opens between learners, which are ephemeral), and, apart from the
kustomization, ``export/reader.yaml``: a Job that mounts the run's volume read-only
once training is over, from which ``kubectl cp`` copies the run directory out.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fleetmind.deploy.kustomize import dump_yaml, kustomization, write_atomically
from fleetmind.deploy.pod_parts import (
    TOKEN_KEY,
    Obj,
    container_security_context,
    pod_basics,
    tmp_volume,
)
from fleetmind.deploy.train_pods import (
    CA_KEY,
    actor_deployment,
    actors_name,
    config_map,
    labels,
    learner_name,
    learner_set,
    metadata,
    run_claim,
)
from fleetmind.deploy.train_spec import DATA_MOUNT, LEARNER_PORT, RENDEZVOUS_PORT, RUN_DIR
from fleetmind.deploy.train_spec import TrainDeployment as Dep

READER_FILE = "export/reader.yaml"
READER_SECONDS = 3600
"""How long the reader Job keeps the volume mounted for ``kubectl cp``."""


@dataclass(frozen=True)
class TrainRendering:
    """The kustomization's objects (one file each), the reader apart, and every file."""

    objects: dict[str, Obj]
    """File name -> Kubernetes object, as the kustomization lists them."""
    apart: dict[str, Obj]
    """Objects applied by hand after training (the reader Job)."""
    files: dict[str, str]
    """Every file to write, the objects' YAML included."""

    def all_objects(self) -> list[Obj]:
        """Every object rendered, the kustomization's first."""
        return [*self.objects.values(), *self.apart.values()]


def learner_service(dep: Dep) -> Obj:
    """Headless: it gives each learner the stable name ``NAME-learner-R.NAME-learner``.

    Names resolve before a learner is Ready: the group meets on learner 0's name
    before any learner listens for actors.
    """
    ports: list[Obj] = [
        {
            "name": "grpc",
            "port": LEARNER_PORT,
            "targetPort": "grpc",
            "protocol": "TCP",
            "appProtocol": "grpc",
        }
    ]
    if dep.dist.learners > 1:
        ports.append(
            {
                "name": "rendezvous",
                "port": RENDEZVOUS_PORT,
                "targetPort": "rendezvous",
                "protocol": "TCP",
            }
        )
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": metadata(dep, learner_name(dep), "learner"),
        "spec": {
            "clusterIP": "None",
            "publishNotReadyAddresses": True,
            "selector": labels(dep, "learner"),
            "ports": ports,
        },
    }


def learner_policy(dep: Dep) -> Obj:
    """Learners are reached on gRPC by the fleet's actors, on any port by each other."""
    actors = {"podSelector": {"matchLabels": labels(dep, "actor")}}
    learners = {"podSelector": {"matchLabels": labels(dep, "learner")}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(dep, learner_name(dep), "learner"),
        "spec": {
            "podSelector": {"matchLabels": labels(dep, "learner")},
            "policyTypes": ["Ingress"],
            "ingress": [
                {"from": [actors], "ports": [{"protocol": "TCP", "port": LEARNER_PORT}]},
                # the rendezvous port and gloo's connections, on ephemeral ports
                {"from": [learners]},
            ],
        },
    }


def actor_policy(dep: Dep) -> Obj:
    """Actors listen on nothing: no ingress at all."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": metadata(dep, f"{dep.name}-actors", "actor"),
        "spec": {
            "podSelector": {"matchLabels": labels(dep, "actor")},
            "policyTypes": ["Ingress"],
            "ingress": [],
        },
    }


def reader_job(dep: Dep) -> Obj:
    """A pod that holds the run's volume read-only while ``kubectl cp`` copies it out."""
    selector = labels(dep, "reader")
    container: Obj = {
        "name": "reader",
        "image": dep.config.image,
        "imagePullPolicy": "IfNotPresent",
        "command": ["sleep", str(READER_SECONDS)],
        "resources": {
            "requests": {"cpu": "100m", "memory": "64Mi"},
            "limits": {"cpu": "500m", "memory": "256Mi"},
        },
        "securityContext": container_security_context(),
        "volumeMounts": [
            {"name": "data", "mountPath": DATA_MOUNT, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": metadata(dep, f"{dep.name}-reader", "reader"),
        "spec": {
            "backoffLimit": 0,
            "activeDeadlineSeconds": READER_SECONDS + 300,
            "ttlSecondsAfterFinished": 300,
            "template": {
                "metadata": {"labels": selector},
                "spec": {
                    **pod_basics(5),
                    "restartPolicy": "Never",
                    "containers": [container],
                    "volumes": [
                        {
                            "name": "data",
                            "persistentVolumeClaim": {
                                "claimName": run_claim(dep),
                                "readOnly": True,
                            },
                        },
                        tmp_volume(),
                    ],
                },
            },
        },
    }


def render_train(dep: Dep) -> TrainRendering:
    """The kustomization of ``dep``: objects as data, then dumped to YAML."""
    objects: dict[str, Obj] = {
        "train-config.yaml": config_map(dep),
        "learner-service.yaml": learner_service(dep),
        "learners.yaml": learner_set(dep),
    }
    for rank in range(dep.dist.learners):
        objects[f"actors-{rank}.yaml"] = actor_deployment(dep, rank)
    objects["networkpolicy-learners.yaml"] = learner_policy(dep)
    objects["networkpolicy-actors.yaml"] = actor_policy(dep)
    apart = {READER_FILE: reader_job(dep)}
    files = {name: dump_yaml([obj]) for name, obj in {**objects, **apart}.items()}
    files["kustomization.yaml"] = dump_yaml([kustomization(list(objects), dep.config.namespace)])
    files["README.md"] = _readme(dep)
    return TrainRendering(objects, apart, files)


def referenced_secrets(dep: Dep) -> dict[str, str]:
    """Secrets the pods mount, which are never rendered: name -> what it must hold."""
    out = {}
    if dep.config.tls_secret is not None:
        out[dep.config.tls_secret] = (
            f"type kubernetes.io/tls: tls.crt and tls.key (naming *.{learner_name(dep)}) "
            f"and {CA_KEY}, the CA the actors check them against"
        )
    if dep.config.token_secret is not None:
        out[dep.config.token_secret] = (
            f"key {TOKEN_KEY}: bearer tokens, one per line (actors send the first)"
        )
    return out


def _readme(dep: Dep) -> str:
    ns = f"-n {dep.config.namespace} " if dep.config.namespace else ""
    learner0 = f"{learner_name(dep)}-0"
    lines = [
        f"# {dep.name}: fleetmind training on Kubernetes",
        "",
        "Rendered by `fleetmind deploy train`; see docs/deploy.md of fleetmind.",
        "",
        f"- apply: `kubectl {ns}apply -k .` ({dep.train.env_id}, {dep.algo_name}, "
        f"{dep.dist.learners} learner(s), {dep.dist.actors} actor(s))",
        f"- more actors: `kubectl {ns}scale deployment/{actors_name(dep, 0)} --replicas=N` "
        "(one Deployment per learner)",
        f"- follow: `kubectl {ns}logs -f {learner0}`",
        f"- the run directory: {RUN_DIR} on claim `{run_claim(dep)}`; copy it out with "
        f"`kubectl {ns}cp {learner0}:{RUN_DIR} runs/{dep.name}` (while training), or after "
        f"training scale `statefulset/{learner_name(dep)}` to 0, `kubectl {ns}apply -f "
        f"{READER_FILE}` and copy from the reader's pod",
        f"- serve it: `fleetmind deploy serve runs/{dep.name} --name {dep.name} ...`",
    ]
    for name, holds in referenced_secrets(dep).items():
        lines.append(f"- Secret `{name}` (not rendered; create it): {holds}")
    return "\n".join(lines) + "\n"


def write_train(dep: Dep, out: Path, *, force: bool = False) -> TrainRendering:
    """Render ``dep`` and write it to ``out`` atomically."""
    rendering = render_train(dep)
    write_atomically(out, rendering.files, force=force)
    return rendering
