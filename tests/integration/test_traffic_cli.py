"""``fleetmind baseline`` and the traffic ids through the real command line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from fleetmind.cli.main import main
from fleetmind.core.errors import PreconditionError
from fleetmind.envs.scenarios.traffic import sumo_setup


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetmind", *args],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_baseline_json() -> None:
    out = _cli(
        "baseline", "traffic-grid2x2", "--policy", "longest-queue", "--episodes", "2",
        "--seed", "4", "--set", "episode_seconds=600", "--json",
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["policy"] == "longest-queue"
    assert len(result["episodes"]) == 2
    assert result["mean_waiting_time_s"] > 0
    assert result["throughput_vehicles"] > 0


def test_baseline_text(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["baseline", "traffic-single", "--policy", "fixed-time", "--set", "episode_seconds=300"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "mean_waiting_time_s" in out
    assert "per episode" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["traffic-grid3x3", "--policy", "fixed-time"], "unknown traffic scenario"),
        (["traffic-grid2x2", "--policy", "fixed"], "unknown baseline policy"),
        (["traffic-grid2x2", "--policy", "fixed-time", "--set", "rows=0"], "rows=0"),
        (
            [
                "traffic-grid2x2",
                "--policy",
                "fixed-time",
                "--set",
                "demand.arrival_rates=[1,-1,0,0]",
            ],
            "negative",
        ),
        (["traffic-grid2x2", "--policy", "fixed-time", "--set", "rows"], "KEY=VALUE"),
        (["traffic-grid2x2", "--policy", "fixed-time", "--episodes", "0"], "episodes"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["baseline", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_envs_lists_traffic_ids(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["envs", "--json"]) == 0
    ids = json.loads(capsys.readouterr().out)
    assert ids["traffic-grid4x4"] == "traffic"
    assert ids["sumo-grid2x2"] == "traffic-sumo"


def test_missing_sumo_says_how_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sumo_setup, "find_sumo_home", lambda: None)
    with pytest.raises(PreconditionError, match=r"pip install 'fleetmind\[sumo\]'"):
        sumo_setup.prepare_sumo("traci")


def test_recipes_are_valid_train_configs() -> None:
    import yaml

    from fleetmind.algos.registry import get_algorithm
    from fleetmind.config import config_from_mapping
    from fleetmind.envs.registry import resolve_env_id
    from fleetmind.runtime.config import TrainConfig

    recipes = sorted((Path(__file__).parents[2] / "recipes").glob("traffic-*.yaml"))
    assert any(r.name == "traffic-grid4x4.yaml" for r in recipes)
    for recipe in recipes:
        data = yaml.safe_load(recipe.read_text())
        spec = get_algorithm(data["algo"])
        section = data.pop(spec.name)
        train = config_from_mapping(TrainConfig, data, str(recipe))
        config_from_mapping(spec.config_cls, section, spec.name)
        assert resolve_env_id(train.env_id) == train.env_id


@pytest.mark.parametrize(
    "algo_args",
    [
        ["--algo", "ppo", "--ppo.rollout-steps", "64"],
        ["--algo", "mappo", "--mappo.rollout-steps", "32", "--mappo.minibatch-size", "64"],
        ["--algo", "ippo", "--ippo.rollout-steps", "32", "--ippo.minibatch-size", "64"],
        ["--algo", "dqn", "--dqn.learning-starts", "64", "--dqn.batch-size", "32"],
    ],
    ids=["ppo", "mappo", "ippo", "dqn"],
)
def test_train_then_eval_reports_traffic_metrics(
    algo_args: list[str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run = tmp_path / "run"
    args = ["train", "traffic-grid2x2", "--steps", "128", "--envs", "2", "--run-dir", str(run)]
    assert main([*args, "--no-progress", *algo_args]) == 0
    capsys.readouterr()
    assert main(["eval", str(run), "--episodes", "2", "--seed", "1000", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    baseline = _cli(
        "baseline", "traffic-grid2x2", "--policy", "fixed-time", "--episodes", "2",
        "--seed", "1000", "--json",
    )  # fmt: skip
    expected = json.loads(baseline.stdout)
    for key in ("mean_waiting_time_s", "mean_travel_time_s", "throughput_vehicles"):
        assert result[key] > 0
        assert result[key] == pytest.approx(np.mean([e[key] for e in result["per_episode"]]))
    assert len(result["per_episode"]) == 2
    assert set(result["per_episode"][0]) == set(expected["episodes"][0])
    assert result["episodes"] == 2
