"""What ``fleetmind deploy serve`` renders: its settings, checked before anything is written."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from fleetmind import __version__
from fleetmind.core.errors import ConfigError
from fleetmind.deploy.pod_parts import check_quantity
from fleetmind.deploy.refs import check_dns_label, parse_image

DEFAULT_IMAGE = f"localhost/fleetmind:{__version__}-cpu"
"""The tag that ``scripts/build-image`` gives the CPU image."""
GRPC_PORT = 8001
METRICS_PORT = 8002
MODELS_MOUNT = "/models"
"""Where the model volume is mounted (read-only) in the server container."""


@dataclass
class ServeDeployConfig:
    """How a served fleet runs on Kubernetes (one field per ``fleetmind deploy serve`` flag)."""

    name: str = ""
    """Name of the Deployment, Service and every other object (a DNS-1123 label)."""
    image: str = DEFAULT_IMAGE
    """Container image built from deploy/Dockerfile (scripts/build-image)."""
    namespace: str | None = None
    """Namespace of every object; unset: the one kubectl uses."""
    replicas: int | None = None
    """A fixed number of replicas, without autoscaling; unset: autoscale between
    --min-replicas and --max-replicas."""
    min_replicas: int = 2
    """Fewest replicas the autoscaler keeps (2 or more keeps serving through a node drain)."""
    max_replicas: int = 10
    """Most replicas the autoscaler starts."""
    target_wait_ms: float = 40.0
    """Autoscaling target: the wait a new call meets before a replica takes it up
    (``fleetmind_inference_wait_seconds``, averaged over a minute per pod), in ms. It
    must stay under the servers' --max-wait-ms (100), beyond which they refuse calls:
    40 ms adds replicas while the wait climbs toward it (a few ms below saturation)."""
    target_cpu: str = "800m"
    """Second autoscaling target: average CPU use per replica (a quantity). The wait
    says when replicas fall behind but not how many the load needs (it is near 0 at
    half load); CPU is proportional to the load, so it keeps scale-down from removing
    replicas the load still needs, and it scales out if the metric adapter fails. One
    replica saturates near one core; 800m leaves the wait to decide scale-up."""
    tls_secret: str | None = None
    """kubernetes.io/tls Secret (tls.crt, tls.key) that turns TLS on; never rendered."""
    token_secret: str | None = None
    """Secret whose key ``tokens`` holds the accepted bearer tokens, one per line; never
    rendered."""
    insecure: bool = False
    """Serve without a token (--token-secret): every pod listens beyond loopback, so
    anyone the NetworkPolicy lets in may call it; the server logs a warning. Refused
    unless given, like ``fleetmind serve --insecure``."""
    model_claim: str | None = None
    """An existing PersistentVolumeClaim that holds PATH; unset: one named NAME-models is
    rendered and the model is copied into it (docs/deploy.md)."""
    model_volume_size: str = "1Gi"
    """Size of the rendered model claim."""
    cpu: str = "1"
    """CPU request of each replica (the limit is twice as much)."""
    memory: str = "1Gi"
    """Memory request and limit of each replica."""
    grace_s: float = 10.0
    """How long a stopping replica drains in-flight calls (the pod gets 15 s more)."""
    monitoring_namespace: str = "monitoring"
    """Namespace of Prometheus: the only one the NetworkPolicy lets reach the metrics port."""

    def validate(self) -> None:
        """ConfigError naming the first setting that cannot be rendered."""
        check_dns_label(self.name, "--name")
        parse_image(self.image)
        for flag, value in (
            ("--namespace", self.namespace),
            ("--tls-secret", self.tls_secret),
            ("--token-secret", self.token_secret),
            ("--model-claim", self.model_claim),
            ("--monitoring-namespace", self.monitoring_namespace),
        ):
            if value is not None:
                check_dns_label(value, flag)
        if self.replicas is not None and self.replicas < 1:
            raise ConfigError(f"--replicas must be 1 or more, got {self.replicas}")
        if self.min_replicas < 1:
            raise ConfigError(f"--min-replicas must be 1 or more, got {self.min_replicas}")
        if self.min_replicas > self.max_replicas:
            raise ConfigError(
                f"--min-replicas {self.min_replicas} is above --max-replicas {self.max_replicas}"
            )
        for flag, value in (
            ("--cpu", self.cpu),
            ("--memory", self.memory),
            ("--model-volume-size", self.model_volume_size),
            ("--target-cpu", self.target_cpu),
        ):
            check_quantity(value, flag)
        _check_target_wait(self.target_wait_ms)
        if not self.grace_s >= 0:  # NaN too
            raise ConfigError(f"--grace-s must be 0 or more, got {self.grace_s}")
        if self.token_secret is None and not self.insecure:
            raise ConfigError(
                "every replica listens beyond loopback: pass --token-secret SECRET (its key "
                "`tokens` holds the accepted bearer tokens) or, on a network nothing "
                "untrusted reaches, --insecure"
            )


def _check_target_wait(target_ms: float) -> None:
    """The target must lie between 0 and the servers' shedding threshold."""
    from fleetmind.serve.config import ServeConfig

    shed_ms = ServeConfig.max_wait_ms
    if not 0 < target_ms < shed_ms:  # NaN too
        raise ConfigError(
            f"--target-wait-ms must be above 0 and below the servers' --max-wait-ms "
            f"({shed_ms:g}, where they start refusing calls), got {target_ms:g}"
        )


@dataclass(frozen=True)
class ServedModels:
    """What PATH holds, as the server will see it at ``/models``."""

    kind: str
    """``run`` (one run directory) or ``repository`` (``<model>/<version>/`` folders)."""
    models: tuple[str, ...]
    """Model names the server will serve."""


def inspect_path(path: Path) -> ServedModels:
    """The models under ``path``; ConfigError when it is neither a run nor a repository."""
    from fleetmind.serve.repository import is_run_directory, scan

    if not path.is_dir():
        raise ConfigError(f"{path} is not a directory; pass a run directory or model repository")
    if is_run_directory(path):
        return ServedModels("run", (path.resolve().name,))
    try:
        found = scan(path, None)
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    names = tuple(sorted({c.model for c in found}))
    if not names:
        raise ConfigError(
            f"{path} is neither a run directory (checkpoints/latest.json) nor a model "
            "repository (<model>/<version>/ folders with checkpoints)"
        )
    return ServedModels("repository", names)


@dataclass(frozen=True)
class ServeDeployment:
    """A checked config and the models it serves: everything the manifests come from."""

    config: ServeDeployConfig
    served: ServedModels
    server_options: frozenset[str] = field(default_factory=frozenset)
    """Options that this version of ``fleetmind serve`` reads (ServeConfig's fields)."""


def checked(config: ServeDeployConfig, path: Path) -> ServeDeployment:
    """Validate ``config`` and ``path`` together (nothing is written before this passes)."""
    import dataclasses

    from fleetmind.serve.config import ServeConfig

    config.validate()
    served = inspect_path(path)
    options = frozenset(f.name for f in dataclasses.fields(ServeConfig))
    return ServeDeployment(config, served, options)
