"""``fleetmind train --algo dqn``: run directory, eval, resume and loading, as subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np

from fleetmind.algos.loading import load_agent

TINY = [
    "--dqn.hidden-sizes",
    "16",
    "--dqn.learning-starts",
    "64",
    "--dqn.train-frequency",
    "16",
    "--dqn.gradient-steps",
    "2",
    "--dqn.batch-size",
    "16",
]


def fleetmind(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "fleetmind", "--log-level", "WARNING", *args],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def test_train_eval_resume_load(tmp_path: Path) -> None:
    run = tmp_path / "run"
    done = fleetmind(
        "train",
        "CartPole-v1",
        "--algo",
        "dqn",
        "--steps",
        "400",
        "--envs",
        "2",
        "--run-dir",
        str(run),
        "--no-progress",
        *TINY,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["env_steps"] >= 400
    metrics = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["env_steps"] >= 400

    evaluated = fleetmind("eval", str(run), "--episodes", "2", "--json")
    assert evaluated.returncode == 0, evaluated.stderr
    assert json.loads(evaluated.stdout)["episodes"] == 2

    resumed = fleetmind(
        "train", "CartPole-v1", "--resume", str(run), "--steps", "600", "--no-progress"
    )
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["env_steps"] >= 600

    loaded = load_agent(run)
    assert loaded.algo == "dqn"
    assert loaded.env_steps >= 600
    action = loaded.agent.act(np.zeros(4, dtype=np.float32))
    assert int(action) in (0, 1)


def test_continuous_actions_exit_2_with_ppo_hint(tmp_path: Path) -> None:
    done = fleetmind(
        "train", "Pendulum-v1", "--algo", "dqn", "--steps", "10", "--run-dir", str(tmp_path / "r")
    )
    assert done.returncode == 2
    assert "--algo ppo" in done.stderr
    assert "Traceback" not in done.stderr
