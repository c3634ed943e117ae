"""Speed of the built-in traffic simulator, against SUMO on the same kind of grid.

Measures intersection-steps per second (env steps x signals) through the
PettingZoo parallel API on one core, with every signal cycling its phases, for
the built-in 4x4 rush-hour grid; then the same loop on SUMO's 4x4 grid
(libsumo) when SUMO is installed, and prints the ratio.

    .venv/bin/python benchmarks/traffic_sim_speed.py [--steps 3000] [--sumo-steps 200]
        [--sumo-id sumo-grid4x4] [--sumo-backend libsumo|traci]
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


def measure(
    env_id: str, steps: int, overrides: dict[str, object] | None = None
) -> tuple[float, float]:
    """Intersection-steps per wall-clock second and per CPU second of this process.

    On a busy machine the CPU-time figure is the one-core speed; the wall-clock
    one includes time the process waited for a core.
    """
    env = make_traffic_env(env_id, overrides)
    agents = list(env.possible_agents)
    env.reset(seed=0)
    episode = 0
    start = time.perf_counter()
    cpu_start = time.process_time()
    for step in range(steps):
        if not env.agents:
            episode += 1
            env.reset(seed=episode)
        phase = (step // 4) % 4
        env.step({a: phase % env.action_space(a).n for a in env.agents})
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    env.close()
    work = steps * len(agents)
    return work / elapsed, work / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3000, help="env steps per repeat")
    parser.add_argument("--repeats", type=int, default=3, help="repeats (median reported)")
    parser.add_argument("--sumo-steps", type=int, default=200, help="env steps on SUMO (0: skip)")
    parser.add_argument("--sumo-id", default="sumo-grid4x4", help="SUMO scenario to compare with")
    parser.add_argument(
        "--sumo-backend", default="libsumo", choices=("libsumo", "traci"), help="how to run SUMO"
    )
    args = parser.parse_args()
    runs = [measure("traffic-grid4x4", args.steps) for _ in range(args.repeats)]
    wall = statistics.median(r[0] for r in runs)
    cpu = statistics.median(r[1] for r in runs)
    print(f"built-in traffic-grid4x4: {cpu:,.0f} intersection-steps per CPU second (one core)")
    print(f"  wall clock: {wall:,.0f} intersection-steps/s")
    print(f"  meets target {TARGET:,} (CPU second): {cpu >= TARGET}")
    if args.sumo_steps > 0 and sumo_available():
        sumo_wall, sumo_cpu = measure(args.sumo_id, args.sumo_steps, {"backend": args.sumo_backend})
        print(f"SUMO {args.sumo_id} ({args.sumo_backend}): {sumo_wall:,.0f} intersection-steps/s")
        print(f"  built-in / SUMO speed ratio (wall clock): {wall / sumo_wall:,.1f}x")
        if args.sumo_backend == "libsumo":
            print(f"  per CPU second: {sumo_cpu:,.0f}; ratio {cpu / sumo_cpu:,.1f}x")
    else:
        print("SUMO not installed or skipped: no ratio")


if __name__ == "__main__":
    main()
