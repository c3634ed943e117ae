"""``fleetmind envs``: list the environment ids fleetmind can train on."""

from __future__ import annotations

import argparse
import json
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``envs`` subcommand."""
    parser = subparsers.add_parser(
        "envs",
        help="list the environment ids fleetmind can train on",
        description="List the environment ids fleetmind can train on, with their family.",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object id -> family")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Print the ids."""
    from fleetmind.envs.registry import trainable_env_ids

    ids = trainable_env_ids()
    if args.json:
        print(json.dumps(ids))
        return 0
    width = max(len(i) for i in ids)
    for env_id, family in ids.items():
        print(f"{env_id:<{width}}  {family}")
    return 0
