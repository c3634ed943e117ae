"""Gaps to the optimum on Taillard's ta01-ta10: every dispatching rule and CP-SAT.

For each instance, prints each rule's makespan and its gap to the known optimum
(``makespan / optimum - 1``), then CP-SAT's makespan, gap and proven lower bound
within ``--time-limit`` seconds, and the mean gap of each method over the
instances; then one JSON line with every number. Every schedule passes the
feasibility checker first.

    .venv/bin/python benchmarks/jobshop_baselines.py [--time-limit 10] [--workers 1]
        [--instances ta01 ta02 ...]
"""

from __future__ import annotations

import argparse
import json
import time
from typing import Any

from fleetmind.envs.scenarios.jobshop.cpsat import solve_cpsat
from fleetmind.envs.scenarios.jobshop.instance import TAILLARD_OPTIMA, shipped_instance
from fleetmind.envs.scenarios.jobshop.rules import RULES, dispatch_rule
from fleetmind.envs.scenarios.jobshop.schedule import check_schedule


def bench_instance(name: str, time_limit: float, workers: int) -> dict[str, Any]:
    """Every rule's and CP-SAT's makespan on ``name``."""
    instance = shipped_instance(name)
    optimum = TAILLARD_OPTIMA[name]
    row: dict[str, Any] = {"instance": name, "optimum": optimum}
    for rule in RULES:
        schedule = dispatch_rule(instance, rule)
        check_schedule(instance, schedule)
        row[rule] = schedule.makespan
    result = solve_cpsat(instance, time_limit, workers=workers)
    check_schedule(instance, result.schedule)
    row["cpsat"] = result.schedule.makespan
    row["cpsat_bound"] = result.bound
    row["cpsat_optimal"] = result.optimal
    if not result.bound <= optimum <= result.schedule.makespan:
        raise SystemExit(f"{name}: CP-SAT contradicts the optimum {optimum}: {row}")
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--time-limit", type=float, default=10.0, help="CP-SAT seconds each")
    parser.add_argument("--workers", type=int, default=1, help="CP-SAT search workers")
    parser.add_argument("--instances", nargs="+", default=list(TAILLARD_OPTIMA))
    args = parser.parse_args()
    methods = [*RULES, "cpsat"]
    print(f"CP-SAT: {args.time_limit:g} s, {args.workers} worker(s); gap = makespan / optimum - 1")
    print(f"{'':6}{'opt':>6}" + "".join(f"{m:>15}" for m in methods) + f"{'cpsat bound':>13}")
    rows, started = [], time.monotonic()
    for name in args.instances:
        row = bench_instance(name, args.time_limit, args.workers)
        rows.append(row)
        cells = "".join(f"{row[m]:>7} {row[m] / row['optimum'] - 1:>6.1%}" for m in methods)
        print(f"{name:6}{row['optimum']:>6}{cells}{row['cpsat_bound']:>13}")
    means = {m: sum(r[m] / r["optimum"] - 1 for r in rows) / len(rows) for m in methods}
    print(f"{'mean':12}" + "".join(f"{'':>8}{means[m]:>6.1%} " for m in methods).rstrip())
    print(f"({time.monotonic() - started:.0f} s)")
    print(json.dumps({"time_limit_s": args.time_limit, "mean_gap": means, "rows": rows}))


if __name__ == "__main__":
    main()
