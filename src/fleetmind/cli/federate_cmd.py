"""``fleetmind federate``: train one policy across sites with Flower, optionally with DP."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``federate`` subcommand; its options come from FederationSettings."""
    from fleetmind.cli.dataclass_args import add_dataclass_arguments
    from fleetmind.federated.settings import FederationSettings

    parser = subparsers.add_parser(
        "federate",
        help="train one policy across sites that keep their data (Flower)",
        description=(
            "Federated training on Flower: each round the sampled sites train from the "
            "global weights on their own environment and send back only new weights; "
            "the strategy aggregates them, optionally with differential privacy "
            "(docs/federated.md)."
        ),
    )
    parser.add_argument("env_id", metavar="ENV_ID", help="environment id (see `fleetmind envs`)")
    add_dataclass_arguments(parser, FederationSettings, skip=("env_id", "site_params"))
    parser.add_argument(
        "--site-config",
        type=Path,
        metavar="FILE",
        help="YAML/JSON file 'sites: [{param: value, ...}, ...]' (default: drawn from --seed)",
    )
    parser.add_argument("--force", action="store_true", help="delete a non-empty --run-dir first")
    parser.add_argument("--json", action="store_true", help="print the summary as one JSON object")
    parser.set_defaults(handler=run)


def needs_flower(command: str, exc: ImportError) -> Exception:
    """The error of ``fleetmind COMMAND`` without the federated extra installed."""
    from fleetmind.core.errors import ConfigError

    return ConfigError(
        f"fleetmind {command} needs Flower ({exc.name} is missing): "
        "pip install 'fleetmind[federated]'"
    )


def run(args: argparse.Namespace) -> int:
    """Federate and print the summary."""
    from fleetmind.cli.train_cmd import flag_values
    from fleetmind.config import merge_into
    from fleetmind.federated.settings import FederationSettings

    try:
        from fleetmind.federated.run import federate
    except ImportError as exc:
        raise needs_flower("federate", exc) from None

    settings = merge_into(
        FederationSettings(env_id=args.env_id), flag_values(args, FederationSettings)
    )
    summary = federate(settings, site_config=args.site_config, force=args.force)
    if args.json:
        print(json.dumps(summary), file=sys.stdout)
        return 0
    epsilon = summary.get("epsilon")
    privacy = "" if epsilon is None else f", epsilon {epsilon:.3g} at delta {summary['delta']:g}"
    local = summary.get("local_epsilon")
    if local is not None:
        privacy += f", local epsilon {local:.3g} a site at delta {summary['local_delta']:g}"
    print(
        f"{summary['rounds']} rounds on {summary['sites']} sites: mean return "
        f"{summary['episode_return_mean']}{privacy}; run directory {summary['run_dir']}"
    )
    return 0
