"""``fleetmind deploy serve PATH --name NAME``: Kubernetes manifests for a served fleet."""

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
            "an autoscaler on calls in flight per pod, a ServiceMonitor, a NetworkPolicy, a "
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
