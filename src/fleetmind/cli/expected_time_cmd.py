"""``fleetmind expected-time``: the mean completion time E[T] of an offloading plan."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any


def register(subparsers: Any) -> None:
    """Add the ``expected-time`` subcommand."""
    parser = subparsers.add_parser(
        "expected-time",
        help="mean completion time E[T] of an offloading plan (JSON file)",
        description=(
            "Print E[T] = sum_i p_i (t_i + sum_{j != i} t_ij) of a plan: a JSON object with "
            "probabilities (p_i, summing to 1), exec_times_s (t_i) and transfer_delays_s "
            "(one row per task i, one column per node j, task i arising at node i); "
            "see docs/offloading.md."
        ),
    )
    parser.add_argument("plan", type=Path, metavar="PLAN", help="path to the plan's JSON file")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Read the plan and print E[T]."""
    from fleetmind.envs.scenarios.offload.expected_time import load_plan

    plan = load_plan(args.plan)
    value = plan.expected_time()
    if args.json:
        print(json.dumps({"expected_time_s": value, "tasks": len(plan.probabilities)}))
    else:
        print(f"E[T] = {value:.6g} s over {len(plan.probabilities)} tasks")
    return 0
