"""Multi-agent training speed: the single-process trainer against ``--actors N``.

Each round trains the same MAPPO run (same env, envs, rollout length, seed) once in
one process and once with N actor processes, alternating, as ``fleetmind train``
subprocesses. Figures per run: steady-state joint env steps per second (from
``metrics.jsonl``, after the first ``--warmup`` fraction of the budget, so process
start-up is left out) and CPU seconds per 1,000 env steps (every process of the run,
actors included, from ``getrusage``), then the medians and the ratio N-actors /
single-process.

    .venv/bin/python benchmarks/marl_distributed.py --env traffic-grid2x2 --steps 20000 \\
        --envs 8 --actors 2 --rounds 3
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def steady_rate(run_dir: Path, warmup: float, budget: int) -> float:
    """Env steps per second between the first report past ``warmup * budget`` and the last."""
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    records = [r for r in records if r.get("env_steps", 0) >= warmup * budget]
    first, last = records[0], records[-1]
    seconds = float(last["wall_time_s"]) - float(first["wall_time_s"])
    return (int(last["env_steps"]) - int(first["env_steps"])) / max(seconds, 1e-9)


def children_cpu_s() -> float:
    """User + system CPU seconds of every waited-for descendant so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def one_run(args: argparse.Namespace, actors: int, root: Path, label: str) -> dict[str, Any]:
    """Train once; its steady-state rate and CPU cost."""
    run_dir = root / label
    argv = [
        sys.executable, "-m", "fleetmind", "--log-level", "WARNING", "train", args.env,
        "--algo", "mappo", "--steps", str(args.steps), "--envs", str(args.envs),
        "--seed", str(args.seed), "--log-interval-s", "1", "--torch-threads", "1",
        "--run-dir", str(run_dir), "--actors", str(actors), "--no-progress",
    ]  # fmt: skip
    cpu0, t0 = children_cpu_s(), time.monotonic()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    wall, cpu = time.monotonic() - t0, children_cpu_s() - cpu0
    summary = json.loads((run_dir / "summary.json").read_text())
    return {
        "actors": actors,
        "env_steps": summary["env_steps"],
        "steps_per_s": steady_rate(run_dir, args.warmup, args.steps),
        "cpu_s_per_1k_steps": 1000 * cpu / summary["env_steps"],
        "process_wall_s": wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="traffic-grid2x2")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--envs", type=int, default=8)
    parser.add_argument("--actors", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--warmup", type=float, default=0.2)
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="marl-dist-") as tmp:
        for r in range(args.rounds):
            for actors in (0, args.actors):
                run = one_run(args, actors, Path(tmp), f"round{r}-actors{actors}")
                runs.append(run)
                print(json.dumps({"round": r, **run}), flush=True)
    medians = {}
    for actors in (0, args.actors):
        mine = [x for x in runs if x["actors"] == actors]
        medians[actors] = {
            k: statistics.median(x[k] for x in mine) for k in ("steps_per_s", "cpu_s_per_1k_steps")
        }
    single, dist = medians[0], medians[args.actors]
    result = {
        "single_process": single,
        f"actors_{args.actors}": dist,
        "steps_per_s_ratio": dist["steps_per_s"] / single["steps_per_s"],
        "cpu_per_step_ratio": dist["cpu_s_per_1k_steps"] / single["cpu_s_per_1k_steps"],
    }
    print(json.dumps(result, indent=2))
    if args.json is not None:
        args.json.write_text(json.dumps({"runs": runs, **result}, indent=2))


if __name__ == "__main__":
    main()
