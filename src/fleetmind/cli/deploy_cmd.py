"""``fleetmind deploy serve|train``: Kubernetes manifests for a served or a training fleet."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from fleetmind.cli.dataclass_args import add_dataclass_arguments, explicit_values


def register(subparsers: Any) -> None:
    """Add the ``deploy`` subcommand and its ``serve`` target."""
    from fleetmind.deploy.serve_spec import ServeDeployConfig

    parser = subparsers.add_parser(
        "deploy",
        help="render Kubernetes manifests (a kustomization)",
        description="Render Kubernetes manifests as a kustomization directory.",
    )
    targets = parser.add_subparsers(dest="target", required=True, metavar="TARGET")
    serve = targets.add_parser(
        "serve",
        help="serve a run directory or model repository as an autoscaled fleet",
        description=(
            "Write a kustomization (kubectl apply -k DIR) that serves PATH: a Deployment with "
            "gRPC probes, a headless Service for client-side balancing, a PodDisruptionBudget, "
            "an autoscaler on the wait calls meet per pod (through the Prometheus Adapter, "
            "whose rule is written beside) and CPU use, a ServiceMonitor, a NetworkPolicy, a "
            "model volume and a Grafana dashboard. Nothing is written unless every input is "
            "usable."
        ),
    )
    serve.add_argument("path", metavar="PATH", type=Path, help="run directory or model repository")
    add_dataclass_arguments(serve, ServeDeployConfig)
    serve.add_argument(
        "--out", type=Path, metavar="DIR", help="output directory (default: k8s/NAME)"
    )
    serve.add_argument("--force", action="store_true", help="replace a non-empty --out")
    serve.set_defaults(handler=run_serve)
    _register_train(targets)


def _register_train(targets: Any) -> None:
    """``deploy train ENV_ID``: the flags of ``fleetmind train`` and the cluster's own."""
    from fleetmind.algos.registry import algorithm_names, algorithm_summary, get_config_cls
    from fleetmind.deploy.train_spec import TrainDeployConfig
    from fleetmind.runtime.config import TrainConfig
    from fleetmind.runtime.dist_config import DistConfig

    train = targets.add_parser(
        "train",
        help="train on a cluster: learners in a StatefulSet, actors in Deployments",
        description=(
            "Write a kustomization (kubectl apply -k DIR) that trains ENV_ID on a cluster: "
            "learners in a StatefulSet with a volume for the run directory, actors in "
            "Deployments you can scale, a headless Service, NetworkPolicies and the "
            "settings as a ConfigMap. Training settings are those of `fleetmind train` "
            "(defaults < --config < flags). Nothing is written unless every input is usable."
        ),
    )
    train.add_argument("positional_env_id", nargs="?", metavar="ENV_ID", help="environment id")
    add_dataclass_arguments(train, TrainConfig, skip=("env_id", "run_dir"))
    train.add_argument("--config", type=Path, metavar="FILE.yaml", help="YAML file of settings")
    dist = train.add_argument_group("distributed options", "actors, learners and mode")
    add_dataclass_arguments(dist, DistConfig, skip=("metrics_port",))
    cluster = train.add_argument_group("cluster options", "how the fleet runs on Kubernetes")
    add_dataclass_arguments(cluster, TrainDeployConfig)
    cluster.add_argument(
        "--out", type=Path, metavar="DIR", help="output directory (default: k8s/NAME)"
    )
    cluster.add_argument("--force", action="store_true", help="replace a non-empty --out")
    for name in algorithm_names():
        group = train.add_argument_group(f"{name} options", algorithm_summary(name))
        add_dataclass_arguments(group, get_config_cls(name), prefix=name)
    train.set_defaults(handler=run_train)


def run_serve(args: argparse.Namespace) -> int:
    """Check every input, then write the kustomization at once."""
    from fleetmind.config import config_from_mapping
    from fleetmind.deploy.serve_render import write_serve
    from fleetmind.deploy.serve_spec import ServeDeployConfig, checked

    config = config_from_mapping(
        ServeDeployConfig, explicit_values(args, ServeDeployConfig), "deploy serve"
    )
    given = explicit_values(args, ServeDeployConfig)
    if config.replicas is not None and {"min_replicas", "max_replicas"} & set(given):
        from fleetmind.core.errors import ConfigError

        raise ConfigError("--replicas fixes the size; drop it to autoscale with --min/--max")
    deployment = checked(config, args.path)
    out = args.out if args.out is not None else Path("k8s") / config.name
    rendering = write_serve(deployment, out, force=args.force)
    summary = {"out": str(out), "files": sorted(rendering.files)}
    print(json.dumps(summary), file=sys.stdout)
    return 0


def run_train(args: argparse.Namespace) -> int:
    """Check every input, then write the kustomization at once."""
    from fleetmind.deploy.train_render import write_train

    deployment = train_deployment(args)
    out = args.out if args.out is not None else Path("k8s") / deployment.name
    rendering = write_train(deployment, out, force=args.force)
    summary = {"out": str(out), "files": sorted(rendering.files)}
    print(json.dumps(summary), file=sys.stdout)
    return 0


def train_deployment(args: argparse.Namespace) -> Any:
    """The checked :class:`~fleetmind.deploy.train_spec.TrainDeployment` of the flags:
    training settings resolved as ``fleetmind train`` resolves them."""
    from fleetmind.cli.train_cmd import build_configs, build_dist_config, flag_values, load_yaml
    from fleetmind.config import config_from_mapping
    from fleetmind.deploy.train_spec import TrainDeployConfig, checked_train
    from fleetmind.runtime.dist_config import DistConfig

    config = config_from_mapping(
        TrainDeployConfig, flag_values(args, TrainDeployConfig), "deploy train"
    )
    train, algo = build_configs(args)
    dist = build_dist_config(args)
    section = (load_yaml(args.config) if args.config else {}).get("distributed") or {}
    given = "actors" in flag_values(args, DistConfig) or "actors" in section
    return checked_train(config, train, algo, dist, actors_given=given)
