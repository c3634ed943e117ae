"""``fleetmind solve-mdp``: value or policy iteration on a known finite MDP."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fleetmind.cli.dataclass_args import add_dataclass_arguments, explicit_values


def register(subparsers: Any) -> None:
    """Add the ``solve-mdp`` subcommand."""
    from fleetmind.algos.tabular.planning import PlanningConfig

    parser = subparsers.add_parser(
        "solve-mdp",
        help="solve a finite MDP (toy-text env or JSON file) by value or policy iteration",
        description=(
            "Solve a finite MDP for its optimal values and policy. ENV_ID_OR_FILE is a "
            "Gymnasium env exposing its transition model (FrozenLake-v1, Taxi-v4, "
            "CliffWalking-v1, ...) or a JSON file in the format of docs/algorithms.md."
        ),
    )
    parser.add_argument("target", metavar="ENV_ID_OR_FILE", help="env id or path to a .json MDP")
    add_dataclass_arguments(parser, PlanningConfig)
    parser.add_argument(
        "--method",
        choices=["value", "policy"],
        default="value",
        help="value iteration or policy iteration (default: value)",
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print one JSON object with values, policy, iterations, residual",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Load the MDP, solve it and print the result."""
    from fleetmind.algos.tabular.planning import PlanningConfig, policy_iteration, value_iteration
    from fleetmind.config import config_from_mapping
    from fleetmind.envs.finite_mdp import from_gymnasium, load_json

    config = config_from_mapping(PlanningConfig, explicit_values(args, PlanningConfig), "option")
    config.validate()
    target = str(args.target)
    if target.endswith(".json") or Path(target).is_file():
        mdp = load_json(Path(target))
    else:
        mdp = from_gymnasium(target)
    solve = value_iteration if args.method == "value" else policy_iteration
    result = solve(mdp, config)
    if args.json:
        print(
            json.dumps(
                {
                    "values": [float(v) for v in result.values],
                    "policy": [int(a) for a in result.policy],
                    "iterations": result.iterations,
                    "residual": result.residual,
                    "converged": result.converged,
                    "gamma": config.gamma,
                    "method": args.method,
                }
            )
        )
        return 0
    print(f"{mdp.name}: {mdp.num_states} states, {mdp.num_actions} actions, gamma={config.gamma}")
    print(
        f"{args.method} iteration: {result.iterations} iterations, residual "
        f"{result.residual:.3g}, {'converged' if result.converged else 'NOT converged'}"
    )
    width = len(str(mdp.num_states - 1))
    for s in range(mdp.num_states):
        print(f"state {s:>{width}}  V={result.values[s]: .6f}  action={result.policy[s]}")
    return 0
