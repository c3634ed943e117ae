"""The offloading scenarios train with fleetmind's team algorithms, end to end."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetmind.cli.main import main


@pytest.mark.parametrize("algo", ["mappo", "ippo"])
def test_toy_trains_then_evaluates_with_offloading_measures(
    algo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = ["train", "fleetmind/offload-toy", "--algo", algo, "--steps", "2000"]
    assert main([*args, "--run-dir", str(run), "--no-progress"]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["env_steps"] >= 2000
    assert summary["episodes"] > 0
    assert summary["episode_return_mean"] < 0  # costs: time, misses, energy
    assert main(["eval", str(run), "--episodes", "2", "--seed", "1000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 2
    assert result["mean_completion_time_s"] > 0
    assert result["tasks"] > 0
    assert len(result["per_episode"]) == 2


@pytest.mark.slow
def test_short_mappo_run_places_toy_tasks_better_than_random(tmp_path: Path) -> None:
    """About 30 s of MAPPO on the toy beats a random placement on the same episodes
    (seeds 2000-2004, apart from the benchmarks' 1000-1004)."""
    import fleetmind
    from fleetmind.envs.scenarios.offload.evaluation import run_baseline

    run = fleetmind.train(
        "fleetmind/offload-toy",
        algo="mappo",
        steps=20_000,
        envs=8,
        seed=1,
        run_dir=str(tmp_path / "run"),
        progress=False,
    )
    learned = fleetmind.evaluate(run.run_dir, episodes=5, seed=2000).scenario_metrics
    random = run_baseline("fleetmind/offload-toy", "random", episodes=5, seed=2000)
    assert learned is not None
    assert learned["mean_completion_time_s"] < 0.85 * random["mean_completion_time_s"]
    assert learned["deadline_miss_rate"] <= random["deadline_miss_rate"]
