"""The ``fleetmind`` command: parses arguments and calls the library.

Each subcommand lives in its own module listed in :data:`COMMANDS`; the module's
``register(subparsers)`` adds its parser and sets ``handler`` to a function
``(args) -> exit code``. Every :class:`FleetmindError` becomes a one-line message
on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence

from fleetmind import __version__
from fleetmind.core.errors import FleetmindError

COMMANDS: tuple[str, ...] = (
    "fleetmind.cli.envs_cmd",
    "fleetmind.cli.train_cmd",
    "fleetmind.cli.eval_cmd",
    "fleetmind.cli.learner_cmd",
    "fleetmind.cli.actor_cmd",
    "fleetmind.cli.solve_mdp_cmd",
    "fleetmind.cli.bandit_cmd",
    "fleetmind.cli.serve_cmd",
    "fleetmind.cli.call_cmd",
    "fleetmind.cli.edge_cmd",
    "fleetmind.cli.baseline_cmd",
    "fleetmind.cli.expected_time_cmd",
    "fleetmind.cli.jobshop_cmd",
    "fleetmind.cli.deploy_cmd",
    "fleetmind.cli.federate_cmd",
    "fleetmind.cli.site_cmd",
)


def build_parser() -> argparse.ArgumentParser:
    """The full argument parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="fleetmind",
        description="Train, serve and deploy fleets of AI agents.",
    )
    parser.add_argument("--version", action="version", version=f"fleetmind {__version__}")
    parser.add_argument(
        "--log-level",
        default="INFO",
        choices=["DEBUG", "INFO", "WARNING", "ERROR"],
        help="verbosity of log lines on stderr (default: INFO)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in COMMANDS:
        importlib.import_module(module).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fleetmind`` console script."""
    from fleetmind.runtime.launch.children import LOG_FORMAT, die_with_parent

    die_with_parent()  # a launcher's actor or learner never outlives the launcher
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=args.log_level,
        format=LOG_FORMAT,
        stream=sys.stderr,
    )
    try:
        code = args.handler(args)
    except FleetmindError as exc:
        print(f"fleetmind {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"fleetmind {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # the reader went away (`fleetmind ... | head`): stop quietly, as Unix tools do;
        # stdout is pointed at /dev/null so that the interpreter's final flush is silent
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
