"""``fleetmind serve PATH``: serve a run directory or model repository over gRPC (and
HTTP/REST with ``--http-port``).

Every option also comes from a ``FLEETMIND_<OPTION>`` environment variable
(``FLEETMIND_PORT``, ``FLEETMIND_MAX_BATCH_SIZE``, ``FLEETMIND_TOKEN_FILE``, ...), so a
container needs no flags; a flag wins over its variable.
"""

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
        help="serve agents over gRPC and HTTP (Open Inference Protocol / KServe V2)",
        description=(
            "Serve PATH over the Open Inference Protocol (inference.GRPCInferenceService), "
            "and, with --http-port, its HTTP/REST flavour (KServe V2 JSON, Triton's binary "
            "tensors), with dynamic batching, health, reflection and Prometheus metrics. PATH "
            "is a run directory (one model, reloaded on each new checkpoint) or a model "
            "repository of "
            "<model>/<version>/ folders. SIGTERM drains in-flight requests and exits 0. "
            "Each option may also be set as FLEETMIND_<OPTION> (e.g. FLEETMIND_PORT); a flag "
            "wins over its variable."
        ),
    )
    parser.add_argument("path", metavar="PATH", type=Path, help="run directory or model repository")
    add_dataclass_arguments(parser, ServeConfig)
    parser.set_defaults(handler=run)


def serve_config(args: argparse.Namespace) -> Any:
    """The :class:`ServeConfig` of the flags, then of ``FLEETMIND_*`` variables, validated."""
    from fleetmind.config import config_from_mapping
    from fleetmind.runtime.dist_config import apply_env
    from fleetmind.serve.config import ServeConfig

    flags = explicit_values(args, ServeConfig)
    config = apply_env(config_from_mapping(ServeConfig, flags, "serve"), set(flags))
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    """Serve until SIGTERM or SIGINT."""
    import asyncio

    config = serve_config(args)
    if not args.path.is_dir():
        raise ConfigError(f"{args.path} is not a directory; pass a run directory or repository")

    from fleetmind.serve.repository import resolve_loader
    from fleetmind.serve.server import listen_address, serve, transport_config

    loader = resolve_loader(config.loader)  # each worker imports it again
    transport_config(config).open_at(listen_address(config))  # refused before loading models
    workers = config.worker_count()
    if workers is not None:
        from fleetmind.serve.workers import serve_workers

        return serve_workers(args.path, config, workers)
    return asyncio.run(serve(args.path, config, loader))
