"""``fleetmind jobshop``: solve a job-shop instance file and check schedules.

``solve FILE --method M`` prints the schedule and its makespan (``--json``: one
JSON object; ``--output PATH``: the schedule's JSON written to PATH); ``check FILE
SCHEDULE`` checks a schedule that file holds. Every schedule passes the
feasibility checker first (see :mod:`fleetmind.envs.scenarios.jobshop.solve`).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

METHOD_HELP = (
    "spt, mwkr, mopnr, fifo (dispatching rules), cpsat (OR-Tools CP-SAT; the 'jobshop' "
    "extra) or agent:RUN (a trained dispatcher; not available yet)"
)


def register(subparsers: Any) -> None:
    """Add the ``jobshop`` subcommand and its ``solve`` and ``check`` commands."""
    parser = subparsers.add_parser(
        "jobshop",
        help="solve job-shop instances (rules, CP-SAT) and check schedules",
        description="Job-shop scheduling under machine breakdowns; see docs/manufacturing.md.",
    )
    commands = parser.add_subparsers(dest="jobshop_command", required=True, metavar="COMMAND")
    solve = commands.add_parser(
        "solve",
        help="schedule an instance file with one method and print the schedule",
        description=(
            "Schedule the instance in FILE (Taillard or OR-Library format, or a shipped name "
            "such as ta01) and print every operation's machine, start and end and the "
            "makespan. With --breakdowns SEED the machines fail as that seed draws: a rule's "
            "schedule is right-shift repaired, cpsat knows the failures in advance."
        ),
    )
    solve.add_argument("instance", metavar="FILE", help="instance file, or ta01..ta10, ft06")
    solve.add_argument("--method", required=True, metavar="METHOD", help=METHOD_HELP)
    solve.add_argument("--breakdowns", type=int, metavar="SEED", help="seed of the breakdowns")
    solve.add_argument(
        "--mtbf", type=float, help="mean time between failures (default: 20 mean operations)"
    )
    solve.add_argument("--mttr", type=float, help="mean repair time (default: 2 mean operations)")
    solve.add_argument(
        "--time-limit", type=float, default=10.0, help="CP-SAT seconds (default: 10)"
    )
    solve.add_argument("--json", action="store_true", help="print one JSON object")
    solve.add_argument("--output", type=Path, metavar="PATH", help="also write the JSON to PATH")
    solve.set_defaults(handler=run_solve)
    check = commands.add_parser(
        "check",
        help="check a schedule (JSON, as solve --json writes it) against an instance",
    )
    check.add_argument("instance", metavar="FILE", help="instance file, or ta01..ta10, ft06")
    check.add_argument("schedule", type=Path, metavar="SCHEDULE", help="the schedule's JSON file")
    check.set_defaults(handler=run_check)


def _instance(name: str) -> Any:
    from fleetmind.envs.scenarios.jobshop.env import fixed_instance
    from fleetmind.envs.scenarios.jobshop.instance import SHIPPED_OPTIMA, load_instance

    return fixed_instance(name) if name in SHIPPED_OPTIMA else load_instance(name)


def run_solve(args: argparse.Namespace) -> int:
    """Solve, check and print."""
    from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
    from fleetmind.envs.scenarios.jobshop.solve import solve

    instance = _instance(args.instance)
    model = None
    if args.breakdowns is not None or args.mtbf is not None or args.mttr is not None:
        model = BreakdownModel.for_instance(instance, args.mtbf, args.mttr)
    seed = args.breakdowns if args.breakdowns is not None else (0 if model else None)
    solution = solve(instance, args.method, seed, model, args.time_limit)
    data = solution.to_json()
    if args.output:
        args.output.write_text(json.dumps(data, indent=1) + "\n")
    if args.json:
        print(json.dumps(data))
        return 0
    optimum = (
        f", optimum {data['optimum']}, gap {data['gap_to_optimum']:.1%}" if data["optimum"] else ""
    )
    print(
        f"{instance.name} ({instance.num_jobs}x{instance.num_machines})  method={args.method}  "
        f"makespan={data['makespan']}{optimum}"
    )
    if "bound" in data:
        print(
            f"  CP-SAT: optimal={data['optimal']} bound={data['bound']} in {data['solver_s']:.2f} s"
        )
    print("  job  op  machine  start    end")
    for op in data["operations"]:
        print(
            f"  {op['job']:>3} {op['index']:>3} {op['machine']:>8} {op['start']:>6} {op['end']:>6}"
        )
    for down in data["downtime"]:
        print(f"  machine {down['machine']} down [{down['start']}, {down['end']}) {down['kind']}")
    return 0


def run_check(args: argparse.Namespace) -> int:
    """Check the schedule; a violation is a FleetmindError (one line, exit 2)."""
    from fleetmind.envs.scenarios.jobshop.schedule import check_schedule, load_schedule

    instance = _instance(args.instance)
    schedule = load_schedule(args.schedule)
    check_schedule(instance, schedule)
    print(f"{args.schedule}: feasible for {instance.name}, makespan {schedule.makespan}")
    return 0
