"""``fleetmind serve PATH``: serve a run directory or model repository over gRPC."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from fleetmind.cli.dataclass_args import add_dataclass_arguments, explicit_values
from fleetmind.core.errors import ConfigError


def register(subparsers: Any) -> None:
    """Add the ``serve`` subcommand."""
    from fleetmind.serve.config import ServeConfig

    parser = subparsers.add_parser(
        "serve",
        help="serve agents over gRPC (Open Inference Protocol / KServe V2)",
        description=(
            "Serve PATH over the Open Inference Protocol (inference.GRPCInferenceService), "
            "with dynamic batching, health, reflection and Prometheus metrics. PATH is a run "
            "directory (one model, reloaded on each new checkpoint) or a model repository of "
            "<model>/<version>/ folders. SIGTERM drains in-flight requests and exits 0."
        ),
    )
    parser.add_argument("path", metavar="PATH", type=Path, help="run directory or model repository")
    add_dataclass_arguments(parser, ServeConfig)
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT."""
    import asyncio

    from fleetmind.config import config_from_mapping
    from fleetmind.serve.config import ServeConfig

    config = config_from_mapping(ServeConfig, explicit_values(args, ServeConfig), "serve")
    config.validate()
    if not args.path.is_dir():
        raise ConfigError(f"{args.path} is not a directory; pass a run directory or repository")

    from fleetmind.serve.repository import resolve_loader
    from fleetmind.serve.server import listen_address, serve, transport_config

    loader = resolve_loader(config.loader)
    transport_config(config).open_at(listen_address(config))  # refused before loading models
    return asyncio.run(serve(args.path, config, loader))
