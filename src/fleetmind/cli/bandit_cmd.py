"""``fleetmind bandit``: compare bandit agents by cumulative regret and plot it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from fleetmind.cli.dataclass_args import add_dataclass_arguments, explicit_values

DEFAULT_ALGOS = {
    "gaussian": "epsilon-greedy,ucb1,thompson-gaussian",
    "bernoulli": "epsilon-greedy,ucb1,thompson-bernoulli,thompson-gaussian",
}


def register(subparsers: Any) -> None:
    """Add the ``bandit`` subcommand."""
    from fleetmind.algos.bandits.policies import BanditConfig

    parser = subparsers.add_parser(
        "bandit",
        help="compare bandit agents on a k-armed testbed or a reward table",
        description=(
            "Run bandit agents for --steps pulls, --runs times, on the k-armed testbed "
            "(or a CSV reward table: one row per step, one column per arm), print their "
            "mean cumulative regret and write a regret plot."
        ),
    )
    parser.add_argument(
        "--algos",
        default=None,
        help="comma-separated agents: epsilon-greedy, ucb1, thompson-bernoulli, "
        "thompson-gaussian (default: all that fit the rewards)",
    )
    parser.add_argument(
        "--testbed",
        choices=["gaussian", "bernoulli"],
        default="gaussian",
        help="kind of testbed arms (default: gaussian)",
    )
    parser.add_argument("--rewards", type=Path, metavar="FILE.csv", help="replay a reward table")
    parser.add_argument("--steps", type=int, default=1000, help="pulls per run (default: 1000)")
    parser.add_argument("--runs", type=int, default=20, help="independent runs (default: 20)")
    parser.add_argument(
        "--plot",
        type=Path,
        default=Path("bandit-regret.png"),
        help="where to write the regret plot (default: bandit-regret.png)",
    )
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    add_dataclass_arguments(parser, BanditConfig, skip=("algo",))
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    """Run the comparison, print the final regrets and write the plot."""
    from fleetmind.algos.bandits.compare import compare_bandits, plot_regret
    from fleetmind.algos.bandits.policies import BANDIT_ALGOS, BanditConfig
    from fleetmind.config import config_from_mapping
    from fleetmind.core.errors import ConfigError
    from fleetmind.envs.bandit_env import KArmedTestbed, RewardTable, TestbedKind

    base = config_from_mapping(BanditConfig, explicit_values(args, BanditConfig), "option")
    base.validate()
    if args.steps < 1 or args.runs < 1:
        raise ConfigError("--steps and --runs must be positive integers")
    kind: TestbedKind = "bernoulli" if args.rewards is not None else args.testbed
    algos = [a.strip() for a in (args.algos or DEFAULT_ALGOS[kind]).split(",") if a.strip()]
    unknown = [a for a in algos if a not in BANDIT_ALGOS]
    if unknown:
        raise ConfigError(f"unknown bandit {unknown[0]!r}; choose from {', '.join(BANDIT_ALGOS)}")
    if args.rewards is not None:
        table = RewardTable.from_csv(args.rewards)
        if args.steps > len(table):
            raise ConfigError(
                f"--steps {args.steps} exceeds the {len(table)} rows of {args.rewards}"
            )
        curves = compare_bandits(
            algos, lambda _run: RewardTable(table.table), args.steps, args.runs, base
        )
        title = f"{args.rewards.name}: {table.num_arms} arms"
    else:
        if "thompson-bernoulli" in algos and kind == "gaussian":
            raise ConfigError("thompson-bernoulli needs rewards in [0, 1]; use --testbed bernoulli")
        curves = compare_bandits(
            algos,
            lambda r: KArmedTestbed(base.num_arms, kind, seed=base.seed + 10_000 + r),
            args.steps,
            args.runs,
            base,
        )
        title = f"{base.num_arms}-armed {kind} testbed"
    plot_regret(curves, args.plot, f"{title}, {args.runs} runs")
    final = {algo: float(curve[-1]) for algo, curve in curves.items()}
    if args.json:
        print(
            json.dumps(
                {
                    "final_regret": final,
                    "steps": args.steps,
                    "runs": args.runs,
                    "plot": str(args.plot),
                }
            )
        )
        return 0
    for algo, regret in sorted(final.items(), key=lambda kv: kv[1]):
        print(f"{algo:<20} cumulative regret {regret:10.2f}")
    print(f"plot: {args.plot}")
    return 0
