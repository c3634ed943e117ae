"""Learning thresholds of the team algorithms, PPO and V-trace (slow: minutes)."""

from __future__ import annotations

from pathlib import Path

import pytest

import fleetmind

INDEPENDENT = {"share_parameters": False, "centralized_critic": False}
"""Team IMPALA switched to IPPO's shape: a network per agent, local critics."""


@pytest.mark.slow
def test_mappo_solves_the_coordination_game(tmp_path: Path) -> None:
    result = fleetmind.train(
        "fleetmind/coordination-v0", algo="mappo", steps=20_000, envs=8, seed=1,
        run_dir=str(tmp_path / "r"), progress=False,
    )  # fmt: skip
    assert result.episode_return_mean is not None
    assert result.episode_return_mean >= 17.0  # of 20; a random team scores about 4.4
    assert fleetmind.evaluate(tmp_path / "r", episodes=32).mean_return >= 19.0


@pytest.mark.slow
def test_shared_mappo_beats_independent_learners(tmp_path: Path) -> None:
    returns = {}
    for algo in ("mappo", "ippo"):
        run = tmp_path / algo
        fleetmind.train(
            "fleetmind/coordination-large-v0", algo=algo, steps=10_000, envs=16, seed=1,
            run_dir=str(run), progress=False,
        )  # fmt: skip
        returns[algo] = fleetmind.evaluate(run, episodes=64, seed=10_000).mean_return
    assert returns["mappo"] > returns["ippo"] + 5.0


@pytest.mark.slow
def test_mappo_with_two_actor_processes_learns_like_one_process(tmp_path: Path) -> None:
    from fleetmind.algos.team.mappo import MAPPOConfig
    from fleetmind.runtime.config import TrainConfig
    from fleetmind.runtime.dist_config import DistConfig
    from fleetmind.runtime.launch.launcher import train_distributed

    config = TrainConfig(
        env_id="fleetmind/coordination-v0", algo="mappo", steps=20_000, envs=8, seed=1,
        run_dir=tmp_path / "r",
    )  # fmt: skip
    result = train_distributed(config, MAPPOConfig(), DistConfig(actors=2), progress=False)
    # The single-process thresholds of test_mappo_solves_the_coordination_game.
    assert result.episode_return_mean is not None
    assert result.episode_return_mean >= 17.0
    assert fleetmind.evaluate(tmp_path / "r", episodes=32).mean_return >= 19.0


@pytest.mark.slow
def test_team_impala_solves_the_coordination_game(tmp_path: Path) -> None:
    result = fleetmind.train(
        "fleetmind/coordination-v0", algo="team-impala", steps=20_000, envs=8, seed=1,
        run_dir=str(tmp_path / "r"), progress=False,
    )  # fmt: skip
    assert result.episode_return_mean is not None
    assert result.episode_return_mean >= 17.0  # of 20; a random team scores about 4.4
    assert fleetmind.evaluate(tmp_path / "r", episodes=32).mean_return >= 19.0


@pytest.mark.slow
def test_team_impala_with_two_async_actor_processes_solves_it_despite_lag(tmp_path: Path) -> None:
    import json

    result = fleetmind.train(
        "fleetmind/coordination-v0", algo="team-impala", actors=2, mode="async", steps=20_000,
        envs=8, seed=1, run_dir=str(tmp_path / "r"), progress=False,
    )  # fmt: skip
    assert result.episode_return_mean is not None
    assert result.episode_return_mean >= 15.0  # returns of lagging policies count too
    assert fleetmind.evaluate(tmp_path / "r", episodes=32).mean_return >= 19.0
    lines = (tmp_path / "r" / "metrics.jsonl").read_text().splitlines()
    assert max(json.loads(line).get("policy_lag_max", 0) for line in lines) >= 1  # off-policy


@pytest.mark.slow
def test_shared_team_impala_beats_independent_learners(tmp_path: Path) -> None:
    returns = {}
    for name, switches in (("shared", {}), ("independent", INDEPENDENT)):
        run = tmp_path / name
        fleetmind.train(
            "fleetmind/coordination-large-v0", algo="team-impala", algo_config=switches,
            steps=10_000, envs=16, seed=1, run_dir=str(run), progress=False,
        )  # fmt: skip
        returns[name] = fleetmind.evaluate(run, episodes=64, seed=10_000).mean_return
    assert returns["shared"] > returns["independent"] + 5.0
