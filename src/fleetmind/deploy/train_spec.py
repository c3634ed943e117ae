"""What ``fleetmind deploy train`` renders: its settings, checked before anything is written.

The training settings are those of ``fleetmind train`` (defaults < ``--config`` <
flags), resolved here once and handed to the learners in a ConfigMap; the settings
below say how the fleet runs on Kubernetes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleetmind import __version__
from fleetmind.core.errors import ConfigError
from fleetmind.deploy.pod_parts import check_quantity
from fleetmind.deploy.refs import check_dns_label, parse_image
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import DistConfig

DEFAULT_IMAGE = f"localhost/fleetmind:{__version__}-cpu"
"""The tag that ``scripts/build-image`` gives the CPU image."""
LEARNER_PORT = 50051
"""The learner's gRPC port (actors push trajectories and pull weights here)."""
RENDEZVOUS_PORT = 29500
"""torch.distributed's rendezvous store on learner 0 (``MASTER_PORT``; torchrun's default)."""
DATA_MOUNT = "/data"
"""Where each learner's volume is mounted."""
RUN_DIR = f"{DATA_MOUNT}/run"
"""The run directory on learner 0's volume: the same path on every start, so a learner
that restarts finds its run again."""
CONFIG_MOUNT = "/etc/fleetmind"
CONFIG_FILE = "train.yaml"
NAME_MAX = 40
"""Longest fleet name: ``NAME-learner`` names a StatefulSet, whose name Kubernetes
keeps at 52 characters or fewer (its pods' revision label adds 11)."""
DEFAULT_ACTORS = 2


@dataclass
class TrainDeployConfig:
    """How a training fleet runs on Kubernetes (one field per ``fleetmind deploy train`` flag)."""

    name: str | None = None
    """Prefix of every object's name (a DNS-1123 label of at most 40 characters); unset:
    made from the env id and the algorithm, e.g. cartpole-v1-ppo."""
    image: str = DEFAULT_IMAGE
    """Container image built from deploy/Dockerfile (scripts/build-image)."""
    namespace: str | None = None
    """Namespace of every object; unset: the one kubectl uses."""
    envs_per_actor: int | None = None
    """Environment copies each actor steps; unset: --envs divided by --actors, as
    ``fleetmind train`` does."""
    storage_class: str | None = None
    """StorageClass of each learner's volume; unset: the cluster's default."""
    storage_size: str = "5Gi"
    """Size of each learner's volume (the run directory: checkpoints, metrics, logs)."""
    token_secret: str | None = None
    """Secret whose key ``tokens`` holds the bearer tokens (the learners accept every line,
    actors send the first); never rendered."""
    tls_secret: str | None = None
    """kubernetes.io/tls Secret (tls.crt, tls.key, ca.crt) for the learners' gRPC port;
    actors check the learner against its ca.crt. Never rendered."""
    insecure: bool = False
    """Learners without a token (--token-secret): anyone the NetworkPolicy lets in may push
    data and read the weights. Refused unless given, like ``fleetmind learner --insecure``."""
    learner_cpu: str = "2"
    """CPU request of each learner (the limit is the same)."""
    learner_memory: str = "4Gi"
    """Memory request and limit of each learner."""
    actor_cpu: str = "1"
    """CPU request of each actor (the limit is the same)."""
    actor_memory: str = "1Gi"
    """Memory request and limit of each actor."""

    def validate(self) -> None:
        """ConfigError naming the first setting that cannot be rendered."""
        if self.name is not None:
            check_dns_label(self.name, "--name")
            if len(self.name) > NAME_MAX:
                raise ConfigError(f"--name has {len(self.name)} characters; at most {NAME_MAX}")
        parse_image(self.image)
        for flag, value in (
            ("--namespace", self.namespace),
            ("--tls-secret", self.tls_secret),
            ("--token-secret", self.token_secret),
            ("--storage-class", self.storage_class),
        ):
            if value is not None:
                check_dns_label(value, flag)
        for flag, quantity in (
            ("--storage-size", self.storage_size),
            ("--learner-cpu", self.learner_cpu),
            ("--learner-memory", self.learner_memory),
            ("--actor-cpu", self.actor_cpu),
            ("--actor-memory", self.actor_memory),
        ):
            check_quantity(quantity, flag)
        if self.envs_per_actor is not None and self.envs_per_actor < 1:
            raise ConfigError(f"--envs-per-actor must be 1 or more, got {self.envs_per_actor}")
        if self.token_secret is None and not self.insecure:
            raise ConfigError(
                "the learners listen beyond loopback: pass --token-secret SECRET (its key "
                "`tokens` holds the bearer tokens) or, on a network nothing untrusted "
                "reaches, --insecure"
            )


@dataclass(frozen=True)
class TrainDeployment:
    """A checked config and the training run it renders: everything the manifests come from."""

    config: TrainDeployConfig
    name: str
    """The fleet's name: --name, or one made from the env id and algorithm."""
    train: TrainConfig
    algo: Any
    """The algorithm's config dataclass."""
    dist: DistConfig
    """Actors, learners and mode (its ``actors`` is the number of actor pods)."""
    algo_name: str

    @property
    def envs_per_actor(self) -> int:
        """Environment copies each actor steps."""
        if self.config.envs_per_actor is not None:
            return self.config.envs_per_actor
        return max(1, self.train.envs // self.dist.actors)

    def actors_of(self, rank: int) -> int:
        """How many actors feed learner ``rank``: --actors split as evenly as it goes."""
        share, extra = divmod(self.dist.actors, self.dist.learners)
        return share + (1 if rank < extra else 0)


def default_name(env_id: str, algo: str) -> str:
    """A DNS-1123 label made from the env id and algorithm (``CartPole-v1``, ppo ->
    ``cartpole-v1-ppo``)."""
    raw = re.sub(r"[^a-z0-9]+", "-", f"{env_id.rpartition('/')[2]}-{algo}".lower())
    return raw.strip("-")[:NAME_MAX].strip("-") or "fleetmind"


def checked_train(
    config: TrainDeployConfig,
    train: TrainConfig,
    algo: Any,
    dist: DistConfig,
    *,
    actors_given: bool,
) -> TrainDeployment:
    """Validate everything together (nothing is written before this passes): the env id
    exists, the algorithm trains it with actors, the learners have an actor each."""
    from fleetmind.algos.registry import get_algorithm
    from fleetmind.envs.registry import lookup_env
    from fleetmind.runtime.dist_config import check_dist
    from fleetmind.runtime.pairing import preflight

    config.validate()
    if not train.env_id:
        raise ConfigError("an environment id is required: fleetmind deploy train ENV_ID ...")
    lookup_env(train.env_id)  # UnknownNameError with close matches
    train.validate()
    if not actors_given:
        dist.actors = max(DEFAULT_ACTORS, dist.learners)
    if dist.actors < 1:
        raise ConfigError(f"--actors must be 1 or more on a cluster, got {dist.actors}")
    spec = get_algorithm(train.algo)
    check_dist(spec.name, dist)  # learners > actors, algorithm and mode
    preflight(train, spec, algo)
    name = config.name or default_name(train.env_id, spec.name)
    check_dns_label(name, "--name")
    return TrainDeployment(config, name, train, algo, dist, spec.name)


def train_file(dep: TrainDeployment) -> dict[str, Any]:
    """The ``--config`` file the learners read: the run's settings and its algorithm's.

    The run directory is left out: the learner's command line fixes it on the volume.
    """
    from fleetmind.config import config_to_dict

    train = {k: v for k, v in config_to_dict(dep.train).items() if k != "run_dir"}
    return {**train, dep.algo_name: config_to_dict(dep.algo)}


def config_path() -> Path:
    """Where the learners find :func:`train_file`."""
    return Path(CONFIG_MOUNT) / CONFIG_FILE
