"""The learned dispatcher against the rules, CP-SAT and the published learned ones.

1. Trains PPO on ``fleetmind/jobshop-queues-15x15`` (random 15x15 shops, Taillard's
   distribution; :mod:`fleetmind.envs.scenarios.jobshop.slots`) once per training
   seed with ``recipes/jobshop-dispatcher.yaml``, exactly as
   ``fleetmind train --config recipes/jobshop-dispatcher.yaml --seed S`` does (two
   trainings at a time: ``--parallel``).
2. Scores each trained dispatcher on Taillard's ta01-ta10 (never seen in training):
   the greedy gap to the optimum, the gap of the best schedule sampled within
   ``--sample-s`` seconds per instance, and the time of one decision (observation,
   policy, choice) on a 15x15 shop.
3. Under breakdowns (each instance's default model, seeds ``--breakdown-seeds``):
   the dispatcher online (it meets each failure when it happens) against the best
   rule's static schedule right-shift repaired, and the gap to the clairvoyant
   CP-SAT's lower bound (it knows the failures in advance).
4. Size transfer: the 15x15 dispatcher's makespan over MWKR's on random 20x20
   and 10x10 shops.

Intervals are 95% t-intervals over training seeds. Every schedule passes the
feasibility checker. One JSON line at the end holds every number.

    .venv/bin/python benchmarks/jobshop_dispatcher.py [--seeds 5] [--sample-s 1]
        [--time-limit 5] [--runs DIR]   # --runs DIR: reuse trained runs in DIR
        [--recipe recipes/jobshop-dispatcher-breakdowns.yaml]   # trained under failures
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from fleetmind.cli.jobshop_cmd import load_dispatcher
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
from fleetmind.envs.scenarios.jobshop.instance import (
    TAILLARD_OPTIMA,
    random_instance,
    shipped_instance,
)
from fleetmind.envs.scenarios.jobshop.learned import SAMPLING_TEMPERATURE, LearnedDispatcher
from fleetmind.envs.scenarios.jobshop.maintenance_eval import interval95
from fleetmind.envs.scenarios.jobshop.rules import RULES, dispatch_rule
from fleetmind.envs.scenarios.jobshop.schedule import check_schedule
from fleetmind.envs.scenarios.jobshop.slots import SlotDispatch
from fleetmind.envs.scenarios.jobshop.solve import clairvoyant_cpsat
from fleetmind.nn.threads import limit_threads

ROOT = Path(__file__).resolve().parents[1]
RECIPE = ROOT / "recipes/jobshop-dispatcher.yaml"
PUBLISHED = {"L2D (greedy)": 0.267, "Wheatley (greedy)": 0.177}
"""Published mean gaps on ta01-ta10 (the L2D paper; Wheatley's results table)."""


def train(runs: Path, seeds: list[int], parallel: int, recipe: Path) -> None:
    """Train the seeds not yet trained in ``runs``, ``parallel`` at a time."""
    todo = [s for s in seeds if not (runs / f"seed{s}/checkpoints/latest.json").exists()]
    waiting: list[tuple[int, subprocess.Popen[bytes], float]] = []
    while todo or waiting:
        while todo and len(waiting) < parallel:
            seed = todo.pop(0)
            cmd = [
                sys.executable, "-m", "fleetmind.cli.main", "train", "--config", str(recipe),
                "--seed", str(seed), "--run-dir", str(runs / f"seed{seed}"), "--force",
                "--no-progress",
            ]  # fmt: skip
            log = (runs / f"seed{seed}.log").open("wb")
            waiting.append((seed, subprocess.Popen(cmd, stdout=log, stderr=log), time.time()))
        time.sleep(2)
        for item in list(waiting):
            seed, proc, start = item
            if proc.poll() is not None:
                waiting.remove(item)
                if proc.returncode:
                    raise SystemExit(f"training seed {seed} failed: see {runs}/seed{seed}.log")
                print(f"  trained seed {seed} in {time.time() - start:.0f} s", flush=True)


def decision_ms(dispatcher: LearnedDispatcher, repeats: int = 300) -> tuple[float, float]:
    """Median and p99 of one decision (observe, decide, choose) on ta01, in ms."""
    times = []
    episode = SlotDispatch(shipped_instance("ta01"))
    for _ in range(repeats):
        if episode.done:
            episode = SlotDispatch(shipped_instance("ta01"))
        start = time.perf_counter()
        episode.choose(dispatcher.decide(episode.observe()))
        times.append((time.perf_counter() - start) * 1e3)
    return float(np.median(times)), float(np.percentile(times, 99))


def static_scores(dispatcher: LearnedDispatcher, sample_s: float) -> dict[str, Any]:
    greedy, sampled, samples, workers = [], [], [], 0
    for name, optimum in TAILLARD_OPTIMA.items():
        instance = shipped_instance(name)
        schedule = dispatcher.greedy(instance)
        check_schedule(instance, schedule)
        greedy.append(schedule.makespan / optimum - 1)
        best = dispatcher.sample(instance, sample_s)
        check_schedule(instance, best.schedule)
        sampled.append(best.schedule.makespan / optimum - 1)
        samples.append(best.samples)
        workers = best.workers
    return {"greedy": greedy, "sampled": sampled, "samples": samples, "workers": workers}


def breakdown_baselines(seeds: list[int], time_limit: float) -> list[dict[str, Any]]:
    """Per instance and seed: the best repaired rule and the clairvoyant CP-SAT's bound."""
    rows = []
    for name in TAILLARD_OPTIMA:
        instance = shipped_instance(name)
        model = BreakdownModel.for_instance(instance)
        for seed in seeds:
            best, result = clairvoyant_cpsat(instance, model, seed, time_limit)
            check_schedule(instance, result.schedule)
            rows.append({
                "instance": name, "seed": seed, "repaired": best.makespan,
                "clairvoyant": result.schedule.makespan, "bound": result.bound,
                "online_mwkr": dispatch_rule(instance, "mwkr", model, seed).makespan,
            })  # fmt: skip
    return rows


def breakdown_scores(dispatcher: LearnedDispatcher, rows: list[dict[str, Any]]) -> dict[str, Any]:
    over_repaired, over_bound = [], []
    for row in rows:
        instance = shipped_instance(row["instance"])
        model = BreakdownModel.for_instance(instance)
        schedule = dispatcher.greedy(instance, model, row["seed"])
        check_schedule(instance, schedule)
        over_repaired.append(schedule.makespan / row["repaired"])
        over_bound.append(schedule.makespan / row["bound"] - 1)
    return {
        "over_repaired": float(np.mean(over_repaired)),
        "over_bound": float(np.mean(over_bound)),
    }


def transfer(dispatcher: LearnedDispatcher, size: int, count: int = 10) -> float:
    """Mean makespan over MWKR's on ``count`` random ``size x size`` shops."""
    ratios = []
    for seed in range(count):
        instance = random_instance(size, size, 10_000 + seed)
        ratios.append(
            dispatcher.greedy(instance).makespan / dispatch_rule(instance, "mwkr").makespan
        )
    return float(np.mean(ratios))


def rule_gap(rule: str) -> float:
    """``rule``'s mean gap to the optimum on ta01-ta10."""
    gaps = []
    for name, optimum in TAILLARD_OPTIMA.items():
        instance = shipped_instance(name)
        schedule = dispatch_rule(instance, rule)
        check_schedule(instance, schedule)
        gaps.append(schedule.makespan / optimum - 1)
    return float(np.mean(gaps))


def show(label: str, values: list[float], percent: bool = True) -> str:
    mean, half = interval95(values)
    if percent:
        return f"{label:<52} {mean:7.1%} ± {half:.1%}"
    return f"{label:<52} {mean:7.3f} ± {half:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="training seeds 1..N")
    parser.add_argument("--parallel", type=int, default=2, help="trainings at a time")
    parser.add_argument("--sample-s", type=float, default=1.0, help="sampling budget per instance")
    parser.add_argument("--time-limit", type=float, default=5.0, help="clairvoyant CP-SAT s")
    parser.add_argument("--breakdown-seeds", type=int, nargs="+", default=[100, 101, 102])
    parser.add_argument("--runs", type=Path, default=Path("runs/bench-dispatcher"))
    parser.add_argument(
        "--recipe", type=Path, default=RECIPE, help="training recipe (e.g. the breakdowns one)"
    )
    args = parser.parse_args()
    limit_threads(1)
    seeds = list(range(1, args.seeds + 1))
    args.runs.mkdir(parents=True, exist_ok=True)
    started = time.time()
    print(f"training {len(seeds)} seeds with {args.recipe} into {args.runs}")
    train(args.runs, seeds, args.parallel, args.recipe.resolve())
    trained_s = time.time() - started

    rules = {rule: rule_gap(rule) for rule in RULES}
    best_rule = min(rules, key=lambda r: rules[r])
    print("computing the breakdown baselines (clairvoyant CP-SAT)...", flush=True)
    rows = breakdown_baselines(args.breakdown_seeds, args.time_limit)

    per_seed = []
    for seed in seeds:
        dispatcher = load_dispatcher(args.runs / f"seed{seed}")
        static = static_scores(dispatcher, args.sample_s)
        median_ms, p99_ms = decision_ms(dispatcher)
        result = {
            "seed": seed,
            "greedy_gap": float(np.mean(static["greedy"])),
            "sampled_gap": float(np.mean(static["sampled"])),
            "samples_mean": float(np.mean(static["samples"])),
            "sample_workers": static["workers"],
            "per_instance_greedy": static["greedy"],
            "decision_ms_median": median_ms,
            "decision_ms_p99": p99_ms,
            **breakdown_scores(dispatcher, rows),
            "transfer_20x20": transfer(dispatcher, 20),
            "transfer_10x10": transfer(dispatcher, 10),
        }
        per_seed.append(result)
        print(f"  seed {seed}: greedy {result['greedy_gap']:.1%}, sampled "
              f"{result['sampled_gap']:.1%} ({result['samples_mean']:.0f} samples, "
              f"{result['sample_workers']} processes), "
              f"breakdowns {result['over_repaired']:.3f} of repaired", flush=True)  # fmt: skip

    def col(key: str) -> list[float]:
        return [float(r[key]) for r in per_seed]

    print(f"\nta01-ta10, gap to the optimum ({len(seeds)} training seeds, 95% intervals)")
    for rule, gap in rules.items():
        print(f"{rule.upper() + ' (rule)':<52} {gap:7.1%}")
    for name, gap in PUBLISHED.items():
        print(f"{name + ', published':<52} {gap:7.1%}")
    print(show("fleetmind PPO dispatcher, greedy", col("greedy_gap")))
    sampled = f"best sampled in {args.sample_s:g} s (temperature {SAMPLING_TEMPERATURE:g})"
    print(show("fleetmind PPO dispatcher, " + sampled, col("sampled_gap")))
    print(show(f"greedy over the best rule ({best_rule.upper()}), ratio of gaps", [
        g / rules[best_rule] for g in col("greedy_gap")], percent=False))  # fmt: skip
    print(show("decision time, median ms", col("decision_ms_median"), percent=False))
    print(show("decision time, p99 ms", col("decision_ms_p99"), percent=False))
    repaired = np.mean([r["repaired"] for r in rows])
    print(f"\nunder breakdowns ({len(rows)} instance-seeds; means of per-run ratios)")
    print(show("dispatcher online / best rule right-shift repaired", col("over_repaired"), False))
    print(f"{'MWKR online / best rule right-shift repaired':<52} "
          f"{np.mean([r['online_mwkr'] / r['repaired'] for r in rows]):7.3f}")  # fmt: skip
    print(show("dispatcher online, gap to the clairvoyant bound", col("over_bound")))
    print(f"{'clairvoyant CP-SAT, gap to its bound':<52} "
          f"{np.mean([r['clairvoyant'] / r['bound'] - 1 for r in rows]):7.1%}")  # fmt: skip
    print(f"(mean repaired makespan {repaired:.0f})")
    print("\nsize transfer (the 15x15 dispatcher's makespan over MWKR's, 10 random shops)")
    print(show("20x20", col("transfer_20x20"), percent=False))
    print(show("10x10", col("transfer_10x10"), percent=False))
    print(f"\ntraining {trained_s:.0f} s, everything {time.time() - started:.0f} s")
    print(json.dumps({"rules": rules, "published": PUBLISHED, "seeds": per_seed,
                      "breakdown_rows": rows, "sample_s": args.sample_s,
                      "temperature": SAMPLING_TEMPERATURE}))  # fmt: skip


if __name__ == "__main__":
    main()
