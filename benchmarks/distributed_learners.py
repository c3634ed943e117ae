"""One learner against two sharing updates, same total actors, in the same script.

# env steps/s and all-reduce cost per update, --learners 1 vs 2 (2 actors each time)
.venv/bin/python benchmarks/distributed_learners.py throughput --steps 60000
# CartPole-v1 time to a mean return of 475, --learners 1 vs 2
.venv/bin/python benchmarks/distributed_learners.py solve

Both run ``fleetmind train CartPole-v1 --actors A --learners L`` as a user would and
read rank 0's ``metrics.jsonl`` and ``summary.json``: the all-reduce time is the
learners' own measurement of their gradient collectives (``time_allreduce_s``,
``allreduce_calls``), set against the update time (``time_learn_s``, which includes
it) and the number of updates (``version``).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def train(learners: int, actors: int, extra: list[str]) -> dict[str, Any]:
    """One run; its summary plus the last metrics record of rank 0."""
    with tempfile.TemporaryDirectory() as tmp:
        run_dir = Path(tmp) / "run"
        cmd = [
            sys.executable, "-m", "fleetmind", "--log-level", "WARNING", "train", "CartPole-v1",
            "--actors", str(actors), "--learners", str(learners), "--envs", "16", "--seed", "1",
            "--run-dir", str(run_dir), "--log-interval-s", "1", "--no-progress", *extra,
        ]  # fmt: skip
        t0 = time.monotonic()
        out = subprocess.run(cmd, capture_output=True, text=True, check=False)
        wall = time.monotonic() - t0
        if out.returncode != 0:
            raise SystemExit(f"learners={learners} failed:\n{out.stderr[-3000:]}")
        summary = json.loads(out.stdout.strip().splitlines()[-1])
        records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    return {"summary": summary, "last": records[-1], "wall_with_startup_s": wall}


def describe(learners: int, run: dict[str, Any]) -> dict[str, Any]:
    """The figures of one run."""
    summary, last = run["summary"], run["last"]
    updates = max(int(last["version"]), 1)
    row: dict[str, Any] = {
        "learners": learners,
        "env_steps": summary["env_steps"],
        "train_wall_s": summary["wall_time_s"],
        "steps_per_s": summary["env_steps"] / max(summary["wall_time_s"], 1e-9),
        "updates": updates,
        "update_ms": 1000 * last["time_learn_s"] / updates,
        "exchange_ms": 1000 * last["time_exchange_s"] / updates,
        "solved_at_env_steps": summary["solved_at_env_steps"],
        "solved_at_wall_s": summary["solved_at_wall_time_s"],
        "wall_with_startup_s": round(run["wall_with_startup_s"], 1),
    }
    if "time_allreduce_s" in last:
        calls = max(int(last["allreduce_calls"]), 1)
        row["allreduce_ms_per_update"] = 1000 * last["time_allreduce_s"] / updates
        row["allreduce_ms_per_call"] = 1000 * last["time_allreduce_s"] / calls
        row["allreduce_share_of_update"] = last["time_allreduce_s"] / max(
            last["time_learn_s"], 1e-9
        )
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", choices=["throughput", "solve"])
    parser.add_argument("--actors", type=int, default=2, help="total actors, both runs")
    parser.add_argument("--steps", type=int, default=60_000, help="throughput: step budget")
    args = parser.parse_args()
    if args.what == "throughput":
        extra = ["--steps", str(args.steps)]
    else:
        extra = ["--steps", "400000", "--target-return", "475"]
    rows = [describe(n, train(n, args.actors, extra)) for n in (1, 2)]
    for row in rows:
        print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in row.items()}))
    base = rows[0]
    print(f"steps/s ratio (2 learners / 1): {rows[1]['steps_per_s'] / base['steps_per_s']:.2f}")
    if args.what == "solve" and base["solved_at_wall_s"] and rows[1]["solved_at_wall_s"]:
        ratio = rows[1]["solved_at_wall_s"] / base["solved_at_wall_s"]
        print(f"time-to-475 ratio (2 learners / 1): {ratio:.2f}")


if __name__ == "__main__":
    main()
