"""Speed of the built-in traffic simulator, against SUMO on the same kind of grid.

Measures intersection-steps per second (env steps x signals) through the
PettingZoo parallel API on one core, with every signal cycling its phases, for
the built-in 4x4 rush-hour grid; then the same loop on SUMO's 4x4 grid
(libsumo) when SUMO is installed, and prints the ratio.

    .venv/bin/python benchmarks/traffic_sim_speed.py [--steps 3000] [--sumo-steps 200]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from fleetmind.envs.scenarios.traffic import make_traffic_env
from fleetmind.envs.scenarios.traffic.sumo_setup import sumo_available

TARGET = 20_000


def measure(env_id: str, steps: int, overrides: dict[str, object] | None = None) -> float:
    """Intersection-steps per second over ``steps`` env steps (resets included)."""
    env = make_traffic_env(env_id, overrides)
    agents = list(env.possible_agents)
    env.reset(seed=0)
    episode = 0
    start = time.perf_counter()
    for step in range(steps):
        if not env.agents:
            episode += 1
            env.reset(seed=episode)
        phase = (step // 4) % 4
        env.step({a: phase % env.action_space(a).n for a in env.agents})
    elapsed = time.perf_counter() - start
    env.close()
    return steps * len(agents) / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="env steps per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="repeats (median reported)")
    parser.add_argument("--sumo-steps", type=int, default=200, help="env steps on SUMO (0: skip)")
    args = parser.parse_args()
    builtin = statistics.median(measure("traffic-grid4x4", args.steps) for _ in range(args.repeats))
    print(f"built-in traffic-grid4x4: {builtin:,.0f} intersection-steps/s (target {TARGET:,})")
    print(f"  meets target: {builtin >= TARGET}")
    if args.sumo_steps > 0 and sumo_available():
        sumo = measure("sumo-grid4x4", args.sumo_steps, {"backend": "libsumo"})
        print(f"SUMO sumo-grid4x4 (libsumo): {sumo:,.0f} intersection-steps/s")
        print(f"  built-in / SUMO speed ratio: {builtin / sumo:,.1f}x")
    else:
        print("SUMO not installed or skipped: no ratio")


if __name__ == "__main__":
    main()
