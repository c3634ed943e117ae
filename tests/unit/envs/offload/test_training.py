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
