"""A poisoned actor beside an honest one: the run neither stops early nor diverges.

CartPole-v1, PPO, sync mode, target 475 (100-episode mean), two actor processes of 16
env copies each. The baseline's second actor is honest; the poisoned run's second
actor sends, for every version, one poisoned chunk (in turn: inflated episode
returns, wrong episode lengths, an episode that did not end, a statistics mean far
from its observations, a statistics variance blown up), then its honest chunk,
except every fourth version, when that chunk's rewards are 1e38 (finite, with
episode returns that agree with them: accepted, and the update diverges). Reported
per seed: solved or not, env steps and seconds to the target, updates rolled back,
chunks refused::

    .venv/bin/python benchmarks/poisoned_actor.py --seeds 1 2 3 4 5
"""

from __future__ import annotations

import argparse
import asyncio
import copy
import json
import logging
import os
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ENVS = 16
KINDS = ("returns", "lengths", "phantom", "obs_mean", "obs_var")
ENORMOUS = 1e38
"""Rewards of the poisoner's accepted chunks every fourth version (float32 max ~3.4e38)."""


def poison(chunk: Any, kind: str) -> Any:
    """A copy of ``chunk`` that lies about one thing."""
    from fleetmind.core.exchange import Episode

    bad = copy.deepcopy(chunk)
    stats = bad.obs_stats
    if kind == "returns":
        bad.episodes = [replace(e, team_return=e.team_return * 1e6) for e in bad.episodes] or [
            Episode(1e9, 5, (1e9,))
        ]
    elif kind == "lengths":
        bad.episodes = [replace(e, length=e.length + 7) for e in bad.episodes] or [
            Episode(5.0, 12, (5.0,))
        ]
    elif kind == "phantom":
        bad.episodes = [*bad.episodes, Episode(500.0, 500, (500.0,))]
    elif kind == "obs_mean":
        stats.mean = stats.mean + 1e6
    else:
        stats.var = stats.var * 1e12 + 1e12
    return bad


def run_poisoner(address: str) -> int:
    """The poisoned actor: prints what the learner did with its chunks, as JSON."""
    from fleetmind.core.errors import FleetmindError, InvalidInputError
    from fleetmind.rpc.channel import ChannelConfig
    from fleetmind.rpc.learner_client import GrpcLearnerClient
    from fleetmind.runtime.actor.source import ActorSource
    from fleetmind.runtime.learner.ledger import EpisodeLedger, summed

    client = GrpcLearnerClient(address, ChannelConfig(), None, 30.0)
    session = client.register("poisoner", "CartPole-v1", ENVS, os.getpid())
    source = ActorSource(session, ENVS)
    source.discard_delta()  # as an actor does on registering: the reset rows are not sent
    weights, _ = client.weights(session, -1, 30.0)
    counts = {"refused": 0, "accepted": 0, "enormous_sent": 0}
    ledger = EpisodeLedger.fresh(ENVS, 1)
    seq = 0
    try:
        while weights is not None:
            source.load(weights)
            version = weights.version
            source.collect(version)
            chunk = source.chunk(session.session_id, session.incarnation, {})
            chunk.seq = seq
            try:
                kind = KINDS[version % len(KINDS)]
                reply = client.push([poison(chunk, kind)])
                # Taken: an episode the learner did not see whole (one through a dropped
                # batch) is checked for its length only, and not counted.
                counts["accepted"] += 1
                counts[f"accepted_{kind}"] = counts.get(f"accepted_{kind}", 0) + 1
                ledger, seq = summed(ledger, chunk, scaled=False)[0], seq + 1
                if reply.done:
                    break
                weights, _ = client.weights(session, version, 60.0)
                continue
            except InvalidInputError:
                counts["refused"] += 1
            if version % 4 == 3:
                chunk.trajectories[0].rewards *= ENORMOUS
                counts["enormous_sent"] += 1
            after, chunk.episodes = summed(ledger, chunk, scaled=False)
            reply = client.push([chunk])
            ledger, seq = after, seq + 1
            if reply.done:
                break
            weights, _ = client.weights(session, version, 60.0)
    except FleetmindError as exc:
        counts["ended_with"] = str(exc)[:200]  # type: ignore[assignment]
    finally:
        source.close()
        client.close()
    print(json.dumps(counts), flush=True)
    return 0


def run_arm(seed: int, poisoned: bool, root: Path) -> dict[str, Any]:
    """One training run: the learner here, two actor processes."""
    from fleetmind.algos.registry import get_algorithm
    from fleetmind.rpc.server import ServerConfig
    from fleetmind.runtime.config import TrainConfig
    from fleetmind.runtime.dist_config import DistConfig
    from fleetmind.runtime.learner.run import LearnerRun
    from fleetmind.runtime.learner.run_setup import RunSetup
    from fleetmind.runtime.local import prepare_new

    name = "poisoned" if poisoned else "honest"
    config = TrainConfig(
        env_id="CartPole-v1", seed=seed, steps=400_000, envs=ENVS, target_return=475.0,
        run_dir=root / f"{name}-{seed}", log_interval_s=5.0,
    )  # fmt: skip
    spec = get_algorithm("ppo")
    run = LearnerRun(RunSetup(*prepare_new(config, spec.config_cls())), DistConfig(), False)
    procs: list[subprocess.Popen[str]] = []

    def on_bound(address: str) -> None:
        actor = [sys.executable, "-m", "fleetmind", "--log-level", "ERROR", "actor"]
        flags = ["--learner", address, "--envs", str(ENVS)]
        procs.append(subprocess.Popen([*actor, *flags, "--actor-id", "honest-0"], text=True))
        second = (
            [sys.executable, __file__, "poisoner", address]
            if poisoned
            else [*actor, *flags, "--actor-id", "honest-1"]
        )
        procs.append(subprocess.Popen(second, text=True, stdout=subprocess.PIPE))

    result = asyncio.run(run.serve("127.0.0.1:0", ServerConfig(reflection=False), on_bound))
    outs = [p.communicate(timeout=120)[0] for p in procs]
    codes = [p.returncode for p in procs]
    report: dict[str, Any] = {
        "seed": seed,
        "arm": name,
        "solved": result.solved,
        "solved_at_env_steps": result.solved_at_env_steps,
        "solved_at_s": result.solved_at_wall_time_s,
        "episode_return_mean": result.episode_return_mean,
        "diverged_updates": run.core.guard.rolled_back,
        "versions": run.core.version,
        "actor_exit_codes": codes,
    }
    if poisoned and outs[1]:
        report.update(json.loads(outs[1].strip().splitlines()[-1]))
    return report


def interval(values: list[float]) -> str:
    """Mean and 95% t-interval."""
    from scipy import stats

    a = np.asarray(values, float)
    if len(a) < 2:
        return "-" if len(a) == 0 else f"{a.mean():.0f}"
    half = stats.t.ppf(0.975, len(a) - 1) * a.std(ddof=1) / np.sqrt(len(a))
    return f"{a.mean():.0f} ± {half:.0f}"


def main() -> None:
    if len(sys.argv) > 2 and sys.argv[1] == "poisoner":
        sys.exit(run_poisoner(sys.argv[2]))
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3, 4, 5])
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR)
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for seed in args.seeds:
            for poisoned in (False, True):
                rows.append(run_arm(seed, poisoned, Path(tmp)))
                print(json.dumps(rows[-1]), flush=True)
    for arm in ("honest", "poisoned"):
        mine = [r for r in rows if r["arm"] == arm]
        solved = [r for r in mine if r["solved"]]
        steps = [float(r["solved_at_env_steps"]) for r in solved]
        secs = [float(r["solved_at_s"]) for r in solved]
        print(
            f"{arm}: solved {len(solved)}/{len(mine)}; env steps to 475: {interval(steps)}; "
            f"seconds: {interval(secs)}; rolled back: "
            f"{sum(r['diverged_updates'] for r in mine)}; refused: "
            f"{sum(r.get('refused', 0) for r in mine)}"
        )


if __name__ == "__main__":
    main()
