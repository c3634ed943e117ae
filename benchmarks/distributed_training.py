"""Distributed training benchmarks, each against a baseline in the same script.

# env steps/s against actor count, for an env whose step costs real CPU, and the
# share of actor wall time spent in RPC (from the learner's metrics)
# (--push-queue 0 1: pushes in the actor's loop against pushes from its sender thread)
.venv/bin/python benchmarks/distributed_training.py scaling --actors 1 2 4 8 --seconds 20
# CartPole-v1 time to solve: single-process path vs --actors N, same settings; also
# the time per version, which does not depend on how many steps a seed needs
.venv/bin/python benchmarks/distributed_training.py solve --actors 1 2 --seeds 1 2 3
# the same for IMPALA, its actors in async mode (collecting while the learner updates)
.venv/bin/python benchmarks/distributed_training.py solve --algo impala --actors 1 2 \
    --seeds 1 2 3 --actor-flags --mode async
# what one CartPole rollout (T = 32) costs an actor with E copies: the collector alone
.venv/bin/python benchmarks/distributed_training.py collect --envs 16 8
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np

BUSY_ENV = "BusyCartPole-v1"


class BusyCartPole(gym.Wrapper[Any, Any, Any, Any]):
    """CartPole whose every step also burns ``busy_us`` microseconds of CPU."""

    def __init__(self, busy_us: float = 200.0) -> None:
        super().__init__(gym.make("CartPole-v1"))
        self.busy_s = busy_us * 1e-6

    def step(self, action: Any) -> Any:
        end = time.perf_counter() + self.busy_s
        while time.perf_counter() < end:
            pass
        return self.env.step(action)


def register_busy_env() -> None:
    if BUSY_ENV not in gym.registry:
        gym.register(BUSY_ENV, entry_point=BusyCartPole, max_episode_steps=500)


def run_actor(argv: list[str]) -> int:
    register_busy_env()
    from fleetmind.cli.main import main

    return main(["--log-level", "WARNING", "actor", *argv])


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of a process so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def scaling_point(
    actors: int, seconds: float, envs: int, push_queue: int, mode: str
) -> dict[str, float]:
    """Env steps/s of ``actors`` actor processes over ``seconds`` (after warm-up)."""
    register_busy_env()
    from fleetmind.algos.impala.learner import ImpalaConfig
    from fleetmind.algos.ppo.config import PPOConfig
    from fleetmind.rpc.server import ServerConfig
    from fleetmind.runtime.config import TrainConfig
    from fleetmind.runtime.dist_config import DistConfig
    from fleetmind.runtime.learner.run import LearnerRun
    from fleetmind.runtime.learner.run_setup import RunSetup
    from fleetmind.runtime.local import prepare_new
    from fleetmind.runtime.run_dir import read_metrics

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(
            env_id=BUSY_ENV, run_dir=Path(tmp) / "run", steps=10**9, envs=envs, log_interval_s=1.0
        )
        algo: Any = PPOConfig(update_epochs=1)
        if mode == "async":
            config.algo, algo = "impala", ImpalaConfig()
        setup = RunSetup(*prepare_new(config, algo))
        learner = LearnerRun(setup, DistConfig(mode=mode), progress=False)
        bound: dict[str, Any] = {}
        ready = threading.Event()

        def on_bound(address: str) -> None:
            import asyncio

            bound["address"], bound["loop"] = address, asyncio.get_running_loop()
            ready.set()

        import asyncio

        server = threading.Thread(
            target=lambda: asyncio.run(
                learner.serve(f"unix:{tmp}/l.sock", ServerConfig(reflection=False), on_bound)
            )
        )
        server.start()
        ready.wait()
        procs = [
            subprocess.Popen(
                [sys.executable, __file__, "actor", "--learner", bound["address"],
                 "--envs", str(envs), "--actor-id", f"a{i}", "--push-queue", str(push_queue)]
            )
            for i in range(actors)
        ]  # fmt: skip
        while len(learner.core.sessions) < actors or learner.core.version < 3:
            time.sleep(0.2)
        start_steps, start = learner.core.env_steps, time.monotonic()
        totals0 = dict(learner.core.stage_totals)
        learner.core.lag_history.clear()
        dropped0 = learner.core.dropped_chunks
        learn0, version0 = learner.core.timings["learn"], learner.core.version
        actor_cpu0 = sum(cpu_seconds(p.pid) for p in procs)
        learner_cpu0 = time.process_time()
        time.sleep(seconds)
        actor_cpu = sum(cpu_seconds(p.pid) for p in procs) - actor_cpu0
        learner_cpu = time.process_time() - learner_cpu0
        steps = learner.core.env_steps - start_steps
        elapsed = time.monotonic() - start
        totals = {k: learner.core.stage_totals[k] - totals0[k] for k in totals0}
        lags = list(learner.core.lag_history)
        dropped = learner.core.dropped_chunks - dropped0
        updates = learner.core.version - version0
        learn_ms = 1e3 * (learner.core.timings["learn"] - learn0) / max(updates, 1)
        bound["loop"].call_soon_threadsafe(learner.stop.set)
        server.join()
        for p in procs:
            p.wait(30)
        _ = read_metrics
    busy = sum(totals[k] for k in ("env", "inference", "rpc"))
    chunks = steps / (envs * 32)  # trained chunks: PPO's and IMPALA's default rollout is 32
    return {
        "actors": actors,
        "steps_per_s": steps / elapsed,
        "rpc_share": totals["rpc"] / busy if busy else float("nan"),
        "env_share": totals["env"] / busy if busy else float("nan"),
        "policy_lag_mean": float(np.mean(lags)) if lags else float("nan"),
        "dropped_chunks": dropped,
        "learn_ms": learn_ms,
        "actor_cpu_per_chunk_ms": 1e3 * actor_cpu / chunks if chunks else float("nan"),
        "learner_cpu_per_chunk_ms": 1e3 * learner_cpu / chunks if chunks else float("nan"),
        "push_per_chunk_ms": 1e3 * totals.get("push", 0.0) / chunks if chunks else float("nan"),
        "rpc_per_chunk_ms": 1e3 * totals["rpc"] / chunks if chunks else float("nan"),
        "wait_per_chunk_ms": 1e3 * totals.get("wait", 0.0) / chunks if chunks else float("nan"),
    }


def scaling(args: argparse.Namespace) -> None:
    rows = [
        {**scaling_point(n, args.seconds, args.envs, q, args.mode), "push_queue": q}
        for n in args.actors
        for q in args.push_queue
    ]
    base = {q: next(r for r in rows if r["push_queue"] == q) for q in args.push_queue}
    for row in rows:
        first = base[row["push_queue"]]
        linear = row["steps_per_s"] / (first["steps_per_s"] / first["actors"] * row["actors"])
        print(
            f"push queue={row['push_queue']}  actors={row['actors']:>2}  "
            f"env steps/s={row['steps_per_s']:8.0f}  "
            f"fraction of linear={linear:.2f}  rpc share of actor time={row['rpc_share']:.3f}  "
            f"env share={row['env_share']:.3f}  per chunk: rpc {row['rpc_per_chunk_ms']:.2f} ms, "
            f"push {row['push_per_chunk_ms']:.2f} ms, wait {row['wait_per_chunk_ms']:.2f} ms  "
            f"policy lag {row['policy_lag_mean']:.2f}, dropped chunks {row['dropped_chunks']}, "
            f"update {row['learn_ms']:.1f} ms  CPU per chunk: actors "
            f"{row['actor_cpu_per_chunk_ms']:.1f} ms, "
            f"learner {row['learner_cpu_per_chunk_ms']:.1f} ms"
        )


def version_cost(run_dir: Path, actors: int) -> tuple[float, float]:
    """Milliseconds per version of a finished run: in all, and beyond the computing.

    The computing is what the single process does too: collecting (the trainer's
    ``env``, or the mean over the ``actors``, which collect at the same time, of their
    ``env`` + ``inference``) and updating (``learn``). What is left of the training
    wall time is the path's overhead: for actors the chunk's way up, the weights' way
    down and loading them, every wake-up between, and with several actors the wait
    for the slowest.
    """
    from fleetmind.runtime.run_dir import read_metrics

    last = read_metrics(run_dir)[-1]
    versions = max(1, int(last["version"]))
    if "time_actor_env_s" in last:
        collect = (last["time_actor_env_s"] + last["time_actor_inference_s"]) / max(1, actors)
    else:
        collect = last["time_env_s"]
    wall = float(last["wall_time_s"])
    return 1e3 * wall / versions, 1e3 * (wall - collect - last["time_learn_s"]) / versions


def solve(args: argparse.Namespace) -> None:
    """Both paths per seed, alternating (so a change in machine load hits both); medians."""
    paths: list[tuple[str, list[str]]] = [("single-process", [])]
    count = {"single-process": 0}
    for actors in args.actors:
        paths.append((f"--actors {actors}", ["--actors", str(actors), *args.actor_flags]))
        count[f"--actors {actors}"] = actors
    results: dict[str, list[tuple[float, float, int]]] = {label: [] for label, _ in paths}
    costs: dict[str, list[tuple[float, float]]] = {label: [] for label, _ in paths}
    for seed in args.seeds:
        common = ["CartPole-v1", "--algo", args.algo, "--target-return", str(args.target),
                  "--steps", str(args.steps),
                  "--envs", str(args.envs), "--seed", str(seed),
                  "--log-interval-s", "5"]  # fmt: skip
        for label, extra in paths:
            with tempfile.TemporaryDirectory() as tmp:
                t = time.monotonic()
                out = subprocess.run(
                    [sys.executable, "-m", "fleetmind", "--log-level", "WARNING", "train",
                     *common, *extra, "--run-dir", f"{tmp}/run"],
                    capture_output=True, text=True, check=True,
                ).stdout  # fmt: skip
                wall = time.monotonic() - t
                summary = json.loads(out.strip().splitlines()[-1])
                per_version, overhead = version_cost(Path(tmp) / "run", count[label])
            solved_s = summary["solved_at_wall_time_s"] if summary["solved"] else float("inf")
            steps = summary["solved_at_env_steps"] or summary["env_steps"]
            results[label].append((solved_s, wall, steps))
            costs[label].append((per_version, overhead))
            print(
                f"seed {seed} {label:>16}: solved={summary['solved']} at {steps} steps, "
                f"{solved_s:.2f} s of training ({wall:.1f} s with start-up); per version "
                f"{per_version:.1f} ms, {overhead:.1f} ms of it beyond collecting and updating",
                flush=True,
            )
    base = results["single-process"]
    for label, rows in results.items():
        train = float(np.median([r[0] for r in rows]))
        wall = float(np.median([r[1] for r in rows]))
        steps = float(np.median([r[2] for r in rows]))
        ratio = train / float(np.median([r[0] for r in base]))
        per_version = float(np.median([c[0] for c in costs[label]]))
        overhead = float(np.median([c[1] for c in costs[label]]))
        version_ratio = per_version / float(np.median([c[0] for c in costs["single-process"]]))
        print(
            f"median {label:>16}: {train:.2f} s of training ({ratio:.2f}x single-process), "
            f"{wall:.1f} s with start-up, {steps:.0f} steps; per version {per_version:.1f} ms "
            f"({version_ratio:.2f}x), {overhead:.1f} ms beyond collecting and updating"
        )


def collect(args: argparse.Namespace) -> None:
    """Milliseconds per 32-step rollout of the actor's collector, per copy count."""
    from fleetmind.algos.registry import get_algorithm
    from fleetmind.nn.threads import limit_threads
    from fleetmind.runtime.actor.source import TimedPolicy
    from fleetmind.runtime.actor.tracking_stats import TrackingStats
    from fleetmind.runtime.parts import build_parts

    limit_threads(1)
    spec = get_algorithm("ppo")
    for envs in args.envs:
        parts = build_parts(
            "CartPole-v1", spec, spec.config_cls(), envs=envs, seed=0, normalize_obs=True,
            stats=TrackingStats,
        )  # fmt: skip
        env = parts.env
        policy = TimedPolicy(parts.learner.rollout_policy())
        collector = parts.collector(32, reward_gamma=None, seed=0)
        for _ in range(5):
            collector.collect(policy, 0)
        t = time.perf_counter()
        for _ in range(args.rollouts):
            collector.collect(policy, 0)
        ms = 1e3 * (time.perf_counter() - t) / args.rollouts
        per_step_us = 1e3 * ms / (32 * envs)
        print(f"{envs:3d} copies: {ms:.2f} ms per rollout, {per_step_us:.1f} us per env step")
        env.close()


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "actor":
        sys.exit(run_actor(sys.argv[2:]))
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="what", required=True)
    sc = sub.add_parser("scaling")
    sc.add_argument("--actors", type=int, nargs="+", default=[1, 2, 4, 8])
    sc.add_argument("--seconds", type=float, default=20.0)
    sc.add_argument("--envs", type=int, default=8)
    sc.add_argument("--mode", choices=["sync", "async"], default="sync", help="PPO or IMPALA")
    sc.add_argument(
        "--push-queue",
        type=int,
        nargs="+",
        default=[1],
        help="actor --push-queue values to compare (0: push in the actor's loop); async mode "
        "only: sync actors send chunks up their exchange stream",
    )
    so = sub.add_parser("solve")
    so.add_argument("--actors", type=int, nargs="+", default=[2])
    so.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    so.add_argument(
        "--actor-flags", nargs=argparse.REMAINDER, default=[], help="more flags for actor runs"
    )
    so.add_argument("--target", type=float, default=475.0)
    so.add_argument(
        "--algo", default="ppo", help="every path's algorithm (impala: pair with --mode async)"
    )
    so.add_argument("--steps", type=int, default=400_000)
    so.add_argument("--envs", type=int, default=16)
    co = sub.add_parser("collect")
    co.add_argument("--envs", type=int, nargs="+", default=[16, 8])
    co.add_argument("--rollouts", type=int, default=150)
    args = parser.parse_args()
    if args.what == "collect" and (args.rollouts < 1 or min(args.envs) < 1):
        parser.error("collect: --rollouts and every --envs value must be at least 1")
    if args.what == "solve" and min(args.actors) < 1:
        parser.error("solve: every --actors value must be at least 1 (0 is the single process)")
    np.set_printoptions(precision=3)
    {"scaling": scaling, "solve": solve, "collect": collect}[args.what](args)


if __name__ == "__main__":
    main()
