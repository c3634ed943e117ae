"""``fleetmind actor``: collect experience for a learner on another host.

Every option can also come from ``FLEETMIND_<OPTION>`` (``FLEETMIND_LEARNER``,
``FLEETMIND_TOKEN``, ``FLEETMIND_TLS_CA``...), so a container needs no flags.
"""

from __future__ import annotations

import argparse
from typing import Any

from fleetmind.cli.dataclass_args import add_dataclass_arguments
from fleetmind.runtime.dist_config import ActorConfig


def register(subparsers: Any) -> None:
    """Add the ``actor`` subcommand."""
    parser = subparsers.add_parser(
        "actor",
        help="run an actor that feeds a learner over gRPC",
        description=(
            "Step environments with a CPU copy of the policy and stream trajectories to a "
            "learner (fleetmind learner). Options fall back to FLEETMIND_<OPTION> variables."
        ),
    )
    add_dataclass_arguments(parser, ActorConfig)
    parser.set_defaults(handler=run)


def build_config(args: argparse.Namespace, environ: dict[str, str] | None = None) -> ActorConfig:
    """Defaults < environment variables < flags."""
    from fleetmind.cli.train_cmd import flag_values
    from fleetmind.config import merge_into
    from fleetmind.runtime.dist_config import apply_env

    flags = flag_values(args, ActorConfig)
    config: ActorConfig = merge_into(apply_env(ActorConfig(), set(flags), environ), flags)
    config.validate()
    return config


def run(args: argparse.Namespace) -> int:
    """Run the actor until the learner finishes."""
    from fleetmind.runtime.actor.worker import run_actor_from_config

    return run_actor_from_config(build_config(args))
