"""Multi-agent training with real actor processes: train (sync and async), lose an actor,
eval, resume."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.procs import children, ended_interrupted, kill_tree, latest_version, wait_for

import fleetmind as fleetmind_api
from fleetmind.algos.team.loading import TeamAgent, load_team
from fleetmind.cli.main import main

ENV = "fleetmind/coordination-v0"


def _finish(proc: subprocess.Popen[str], timeout_s: float = 120) -> dict[str, object]:
    out, err = proc.communicate(timeout=timeout_s)
    assert proc.returncode == 0, err[-3000:]
    summary: dict[str, object] = json.loads(out.strip().splitlines()[-1])
    return summary


def _eval(run_dir: Path) -> float:
    return fleetmind_api.evaluate(run_dir, episodes=4).mean_return


def _last_record(run_dir: Path) -> dict[str, object]:
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    record: dict[str, object] = json.loads(lines[-1])
    return record


def test_mappo_with_actors_survives_a_killed_actor_then_evaluates_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    log_path = tmp_path / "stderr.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetmind", "train", ENV, "--algo", "mappo",
             "--actors", "2", "--envs", "4", "--steps", "100000000", "--run-dir", str(run_dir),
             "--actor-timeout-s", "2", "--sync-timeout-s", "3", "--log-interval-s", "0.3",
             "--mappo.rollout-steps", "10", "--mappo.update-epochs", "2"],
            stdout=subprocess.PIPE, stderr=log_file, text=True,
        )  # fmt: skip
    try:
        wait_for(lambda: latest_version(run_dir) >= 2, 120, "two team updates")
        actors = children(proc.pid)
        assert len(actors) == 2
        os.kill(actors[0], signal.SIGKILL)
        killed_at = latest_version(run_dir)
        wait_for(lambda: latest_version(run_dir) >= killed_at + 3, 120, "updates after the kill")
        proc.send_signal(signal.SIGTERM)
        summary, err = ended_interrupted(proc, log_path)
    finally:
        kill_tree(proc)
    assert "exited with -9; restarting" in err
    record = _last_record(run_dir)
    assert {"return_mean/agent_0", "return_mean/agent_1"} <= set(record)
    assert record["episode_return_mean"] is not None

    assert _eval(run_dir) >= 0.0  # the team checkpoint loads and acts

    steps = int(summary["env_steps"]) + 400
    capsys.readouterr()
    assert main(["train", "--resume", str(run_dir), "--steps", str(steps)]) == 0
    resumed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert not resumed["interrupted"]
    assert int(str(resumed["env_steps"])) >= steps
    assert int(str(resumed["episodes"])) > int(summary["episodes"])


def test_ippo_with_actors_trains_and_evaluates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    argv = [
        "train", ENV, "--algo", "ippo", "--actors", "2", "--envs", "4", "--steps", "400",
        "--run-dir", str(run_dir), "--ippo.rollout-steps", "10", "--ippo.update-epochs", "1",
    ]  # fmt: skip
    assert main(argv) == 0  # the learner in this process, the actors in children
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert int(str(summary["env_steps"])) >= 400
    config = json.loads((run_dir / "config.json").read_text())
    assert config["distributed"]["actors"] == 2
    assert latest_version(run_dir) >= 10  # 400 joint steps / (10 steps x 4 envs)
    assert _eval(run_dir) >= 0.0


def test_team_impala_with_actor_processes_trains_async_evaluates_and_resumes(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    argv = [
        "train", ENV, "--algo", "team-impala", "--mode", "async", "--actors", "2",
        "--envs", "4", "--steps", "400", "--run-dir", str(run_dir), "--log-interval-s", "0.2",
        "--team-impala.rollout-steps", "10", "--team-impala.sgd-steps", "1",
    ]  # fmt: skip
    assert main(argv) == 0  # the learner in this process, the actors in children
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert int(str(summary["env_steps"])) >= 400
    config = json.loads((run_dir / "config.json").read_text())
    assert config["distributed"]["mode"] == "async"
    records = [json.loads(line) for line in (run_dir / "metrics.jsonl").read_text().splitlines()]
    assert any("policy_lag_mean" in r and "rho_mean" in r for r in records)
    assert latest_version(run_dir) >= 1
    assert _eval(run_dir) >= 0.0  # the team checkpoint loads and acts
    team = fleetmind_api.load(run_dir)
    assert isinstance(team, TeamAgent)
    assert team.names == ["agent_0", "agent_1"]

    steps = int(str(summary["env_steps"])) + 400  # learner and actors again, async
    assert main(["train", "--resume", str(run_dir), "--steps", str(steps)]) == 0
    resumed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert int(str(resumed["env_steps"])) >= steps


def test_team_impala_with_a_network_per_agent_from_the_python_api(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    switches = {"share_parameters": False, "centralized_critic": False, "rollout_steps": 10}
    result = fleetmind_api.train(
        ENV, algo="team-impala", actors=2, mode="async", algo_config=switches, steps=400,
        envs=4, run_dir=str(run_dir), progress=False,
    )  # fmt: skip
    assert result.env_steps >= 400
    loaded = load_team(run_dir)
    assert loaded.algo == "team-impala"
    assert len(loaded.team.agents) == 2
    assert _eval(run_dir) >= 0.0


@pytest.mark.parametrize("algo", ["mappo", "ippo"])
def test_team_algorithms_refuse_async_mode_and_point_to_team_impala(
    algo: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["train", ENV, "--algo", algo, "--actors", "2", "--mode", "async"]
    assert main([*argv, "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert f"--algo {algo} trains on-policy: use --mode sync, or --algo team-impala" in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["--algo", "team-impala", "--actors", "2"], "--algo team-impala trains with --mode async"),
        (
            ["--algo", "team-impala", "--actors", "2", "--mode", "sync"],
            "--algo team-impala trains with --mode async",
        ),
        (["--algo", "impala", "--actors", "2", "--mode", "async"], "use --algo team-impala"),
    ],
)
def test_wrong_async_pairings_for_a_team_get_one_line_and_exit_2(
    argv: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["train", ENV, *argv, "--run-dir", str(tmp_path / "run")]) == 2
    err = capsys.readouterr().err
    assert words in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()
