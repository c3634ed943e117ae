"""An offloading fleet trains with actor processes (the learner in this process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import fleetmind
from fleetmind.cli.main import main


def test_mappo_with_two_actors_trains_the_toy_fleet_and_evaluates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    argv = [
        "train", "fleetmind/offload-toy", "--algo", "mappo", "--actors", "2", "--envs", "2",
        "--steps", "2000", "--run-dir", str(run_dir), "--no-progress",
    ]  # fmt: skip
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert int(summary["env_steps"]) >= 2000
    config = json.loads((run_dir / "config.json").read_text())
    assert config["distributed"]["actors"] == 2
    result = fleetmind.evaluate(run_dir, episodes=2, seed=1000)
    assert result.scenario_metrics is not None
    assert result.scenario_metrics["mean_completion_time_s"] > 0
