"""Async (V-trace) training: actors never wait, lag is measured and bounded, for a
single agent (IMPALA) and a team (team IMPALA)."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from tests.integration.learner_harness import ROLLOUT, LearnerThread

from fleetmind.algos.impala.learner import ImpalaConfig
from fleetmind.algos.team.config import TeamImpalaConfig
from fleetmind.rpc.channel import ChannelConfig
from fleetmind.rpc.learner_client import GrpcLearnerClient
from fleetmind.runtime.actor.worker import ActorWorker
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import ActorConfig, DistConfig
from fleetmind.runtime.learner.run import LearnerRun
from fleetmind.runtime.learner.run_setup import RunSetup
from fleetmind.runtime.local import prepare_new
from fleetmind.runtime.run_dir import read_metrics


def async_learner(who: str, run_dir: Path, dist: DistConfig, steps: int) -> LearnerThread:
    """An IMPALA CartPole learner, or a team IMPALA one of the coordination game."""
    if who == "agent":
        algo = ImpalaConfig(rollout_steps=ROLLOUT, sgd_steps=1)
        return LearnerThread(run_dir, dist=dist, steps=steps, algo=algo)
    config = TrainConfig(
        env_id="fleetmind/coordination-v0", algo="team-impala", run_dir=run_dir, steps=steps,
        envs=2, log_interval_s=0.5,
    )  # fmt: skip
    team = TeamImpalaConfig(rollout_steps=ROLLOUT, sgd_steps=1, hidden_sizes=(16,))
    run = LearnerRun(RunSetup(*prepare_new(config, team)), dist, progress=False)
    return LearnerThread(run_dir, run=run)


@pytest.mark.parametrize("who", ["agent", "team"])
@pytest.mark.parametrize("max_lag", [0, 2])
def test_async_run_measures_and_bounds_policy_lag(tmp_path: Path, max_lag: int, who: str) -> None:
    dist = DistConfig(mode="async", max_policy_lag=max_lag)
    learner = async_learner(who, tmp_path / "run", dist, steps=1500)
    with learner:
        workers = [
            ActorWorker(
                ActorConfig(learner=learner.address, actor_id=f"a{i}", envs=4),
                GrpcLearnerClient(learner.address, ChannelConfig(), timeout_s=10),
                own_process=False,  # beside its learner: leave the threads alone
            )
            for i in range(2)
        ]
        threads = [threading.Thread(target=w.run, daemon=True) for w in workers]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
    assert learner.result is not None
    assert learner.result.env_steps >= 1500
    records = [r for r in read_metrics(tmp_path / "run") if "policy_lag_max" in r]
    assert records
    assert all(r["policy_lag_max"] <= max_lag for r in records)
    assert all(w.stop.is_set() for w in workers)
    assert all(w.chunks_sent > 0 for w in workers)
    if who == "team":
        assert {"return_mean/agent_0", "return_mean/agent_1"} <= set(records[-1])
