"""``fleetmind jobshop``: solve a job-shop instance file and check schedules.

``solve FILE --method M`` prints the schedule and its makespan (``--json``: one
JSON object; ``--output PATH``: the schedule's JSON written to PATH; ``--gantt
OUT.png``: its Gantt chart); ``check FILE SCHEDULE`` checks a schedule that file
holds. Every schedule passes the feasibility checker first (see
:mod:`fleetmind.envs.scenarios.jobshop.solve`). ``warn`` fits the fault warning
on training seeds and scores it on held-out ones; ``maintain`` compares
maintenance policies by their cost.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fleetmind.envs.scenarios.jobshop.learned import LearnedDispatcher

METHOD_HELP = (
    "spt, mwkr, mopnr, fifo (dispatching rules), cpsat (OR-Tools CP-SAT; the 'jobshop' "
    "extra) or agent:RUN (the dispatcher trained in run directory RUN, e.g. with "
    "`fleetmind train fleetmind/jobshop-queues-15x15`)"
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
    solve.add_argument(
        "--sample-s",
        type=float,
        default=0.0,
        metavar="S",
        help="agent:RUN only: sample schedules from the policy for S seconds and keep the "
        "shortest (default 0: greedy)",
    )
    solve.add_argument("--json", action="store_true", help="print one JSON object")
    solve.add_argument("--output", type=Path, metavar="PATH", help="also write the JSON to PATH")
    solve.add_argument(
        "--gantt", type=Path, metavar="OUT.png", help="also draw the schedule's Gantt chart"
    )
    solve.set_defaults(handler=run_solve)
    check = commands.add_parser(
        "check",
        help="check a schedule (JSON, as solve --json writes it) against an instance",
    )
    check.add_argument("instance", metavar="FILE", help="instance file, or ta01..ta10, ft06")
    check.add_argument("schedule", type=Path, metavar="SCHEDULE", help="the schedule's JSON file")
    check.set_defaults(handler=run_check)
    _register_warn(commands)
    _register_maintain(commands)


def seed_range(text: str) -> range:
    """``A:B`` -> ``range(A, B)``; ConfigError when malformed or empty."""
    from fleetmind.core.errors import ConfigError

    first, sep, last = text.partition(":")
    try:
        seeds = range(int(first), int(last))
    except ValueError:
        raise ConfigError(f"seed range {text!r}: give A:B, two integers (seeds A..B-1)") from None
    if not sep or len(seeds) == 0:
        raise ConfigError(f"seed range {text!r} is empty; give A:B with A < B (seeds A..B-1)")
    return seeds


def _register_warn(commands: Any) -> None:
    warn = commands.add_parser(
        "warn",
        help="fit the fault warning on training seeds, score it on held-out seeds",
        description=(
            "Fit the fault warning (a logistic regression on the wear readings) on the "
            "run-to-failure lives of the training seeds and print its precision, recall and "
            "lead time on those of the test seeds, at its threshold and swept. See "
            "docs/manufacturing.md."
        ),
    )
    warn.add_argument("--train-seeds", required=True, metavar="A:B", help="seeds A..B-1")
    warn.add_argument("--test-seeds", required=True, metavar="A:B", help="seeds A..B-1")
    warn.add_argument(
        "--threshold", type=float, help="warn at this probability (default: best F1 in training)"
    )
    warn.add_argument("--json", action="store_true", help="print one JSON object")
    warn.set_defaults(handler=run_warn)


def _register_maintain(commands: Any) -> None:
    maintain = commands.add_parser(
        "maintain",
        help="compare maintenance policies by their cost on held-out seeds",
        description=(
            "Cost per 1000 time units of run-to-failure, the best fixed maintenance interval, "
            "the best warning threshold (both tuned on --tune-seeds) and trained agents "
            "(--agent RUN, trained on fleetmind/maintenance-v0) on --test-seeds."
        ),
    )
    maintain.add_argument("--tune-seeds", default="0:10", metavar="A:B", help="default 0:10")
    maintain.add_argument(
        "--test-seeds", default="1000:1020", metavar="A:B", help="default 1000:1020"
    )
    maintain.add_argument(
        "--agent", action="append", default=[], metavar="RUN", help="a training run (repeatable)"
    )
    maintain.add_argument("--downtime-cost", type=float, default=1.0, help="per time unit down")
    maintain.add_argument("--repair-cost", type=float, default=200.0, help="per repair")
    maintain.add_argument("--maintenance-cost", type=float, default=20.0, help="per maintenance")
    maintain.add_argument("--horizon", type=int, default=20_000, help="time units per episode")
    maintain.add_argument("--json", action="store_true", help="print one JSON object")
    maintain.set_defaults(handler=run_maintain)


def _instance(name: str) -> Any:
    from fleetmind.envs.scenarios.jobshop.env import fixed_instance
    from fleetmind.envs.scenarios.jobshop.instance import SHIPPED_OPTIMA, load_instance

    return fixed_instance(name) if name in SHIPPED_OPTIMA else load_instance(name)


def run_solve(args: argparse.Namespace) -> int:
    """Solve, check and print."""
    from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
    from fleetmind.envs.scenarios.jobshop.solve import solve

    instance = _instance(args.instance)
    if args.gantt is not None:
        from fleetmind.envs.scenarios.jobshop.gantt import check_writable

        check_writable(args.gantt)
    model = None
    if args.breakdowns is not None or args.mtbf is not None or args.mttr is not None:
        model = BreakdownModel.for_instance(instance, args.mtbf, args.mttr)
    seed = args.breakdowns if args.breakdowns is not None else (0 if model else None)
    dispatcher = None
    if args.method == "agent" or args.method.startswith("agent:"):
        dispatcher = load_dispatcher(args.method.partition(":")[2])
    solution = solve(instance, args.method, seed, model, args.time_limit, args.sample_s, dispatcher)
    data = solution.to_json()
    if args.gantt is not None:
        from fleetmind.envs.scenarios.jobshop.gantt import draw_gantt

        title = f"{instance.name}, {args.method}: makespan {data['makespan']}"
        draw_gantt(instance, solution.schedule, args.gantt, title)
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
    if data.get("decoding") == "sampled":
        print(
            f"  dispatcher: best of {data['samples']} sampled schedules "
            f"({data['sample_workers']} processes, {args.sample_s:g} s) and the greedy one "
            f"(makespan {data['greedy_makespan']})"
        )
    elif "decoding" in data:
        print("  dispatcher: greedy" + (", online" if data["breakdown_seed"] is not None else ""))
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


def run_warn(args: argparse.Namespace) -> int:
    """Fit on the training seeds, score on the test seeds, print."""
    from fleetmind.core.errors import ConfigError
    from fleetmind.envs.scenarios.jobshop.warning import (
        FaultPredictor,
        WarningConfig,
        evaluate_warning,
        reference_model,
    )

    train, test = seed_range(args.train_seeds), seed_range(args.test_seeds)
    if args.threshold is not None and not 0 < args.threshold < 1:
        raise ConfigError(f"--threshold must lie in (0, 1), got {args.threshold}")
    model = reference_model()
    predictor = FaultPredictor.fit(model, WarningConfig.for_model(model), train)
    result = evaluate_warning(predictor, test, args.threshold).to_json()
    result.update(train_seeds=args.train_seeds, test_seeds=args.test_seeds)
    if args.json:
        print(json.dumps(result))
        return 0
    print(
        f"fault warning: trained on seeds {args.train_seeds}, tested on {args.test_seeds} "
        f"({result['failures']} failures; a warning is right within {result['horizon']} "
        f"time units before the failure; readings every {result['sample_every']})"
    )
    print(f"threshold {result['threshold']}: " + _warning_line(result))
    print("  sweep:")
    for row in result["sweep"]:
        print(f"  p >= {row['threshold']:.2f}: " + _warning_line(row))
    return 0


def _warning_line(row: dict[str, Any]) -> str:
    lead = row["lead_median"]
    leads = "-" if lead is None else f"{row['lead_mean']:.1f} mean, {lead:.0f} median"
    return (
        f"precision {row['precision']:.3f}  recall {row['recall']:.3f}  f1 {row['f1']:.3f}  "
        f"lead time {leads}"
    )


def run_maintain(args: argparse.Namespace) -> int:
    """Tune the baselines, score every policy on the test seeds, print."""
    from fleetmind.envs.scenarios.jobshop.maintenance import MaintenanceConfig, MaintenanceCosts
    from fleetmind.envs.scenarios.jobshop.maintenance_eval import compare_policies

    tune, test = seed_range(args.tune_seeds), seed_range(args.test_seeds)
    costs = MaintenanceCosts(args.downtime_cost, args.repair_cost, args.maintenance_cost)
    config = MaintenanceConfig(costs=costs, horizon=args.horizon)
    learned = {f"agent {run}": [_agent_policy(run)] for run in args.agent}
    rows = [row.to_json() for row in compare_policies(config, tune, test, learned)]
    if args.json:
        print(json.dumps({"costs": vars(costs), "rows": rows}))
        return 0
    print(
        f"maintenance cost per 1000 time units on seeds {args.test_seeds} (downtime "
        f"{costs.downtime}/unit, repair {costs.repair}, maintenance {costs.maintenance})"
    )
    print(f"  {'policy':<32} {'setting':<18} {'cost':>14} {'failures':>9} {'maint.':>7}")
    for row in rows:
        cost = f"{row['cost_rate']:.1f} ± {row['ci95']:.1f}"
        print(
            f"  {row['policy']:<32} {row['setting']:<18} {cost:>14} {row['failures']:>9.1f} "
            f"{row['maintenances']:>7.1f}"
        )
    return 0


def load_dispatcher(run: str | Path) -> LearnedDispatcher:
    """The job-shop dispatcher trained in the run directory ``run`` (``agent:RUN``);
    ConfigError saying why not."""
    from fleetmind.algos.loading import load_agent
    from fleetmind.core.errors import ConfigError
    from fleetmind.envs.scenarios.jobshop.learned import LearnedDispatcher

    if not str(run):
        raise ConfigError("--method agent: name the run directory, e.g. agent:runs/dispatcher")
    loaded = load_agent(run)
    return LearnedDispatcher(loaded.agent, str(run), loaded.env_id)


def _agent_policy(run: str) -> Any:
    from fleetmind.algos.loading import load_agent
    from fleetmind.core.errors import ConfigError
    from fleetmind.envs.scenarios.jobshop.catalog import MAINTENANCE_ID

    loaded = load_agent(run)
    if loaded.env_id != MAINTENANCE_ID:
        raise ConfigError(
            f"--agent {run} was trained on {loaded.env_id}, not {MAINTENANCE_ID}; train one "
            f"with `fleetmind train {MAINTENANCE_ID}`"
        )
    agent = loaded.agent
    return lambda env, obs: int(agent.act(obs))
