"""A learner started again with the same command resumes its run by itself (a pod that
Kubernetes restarted); another run's directory is refused, untouched."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.procs import FAST, kill_tree, wait_for

from fleetmind.cli.main import main


def test_restarted_learner_resumes_and_another_run_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir = tmp_path / "run"
    port = _free_port()
    command = [
        sys.executable, "-m", "fleetmind", "learner", "CartPole-v1", "--listen",
        f"127.0.0.1:{port}", "--steps", "100000000", "--envs", "4",
        "--checkpoint-interval-s", "600", *FAST,
    ]  # fmt: skip
    env = {**os.environ, "FLEETMIND_RUN_DIR": str(run_dir)}  # as a pod passes it
    actor = _start([sys.executable, "-m", "fleetmind", "actor", "--learner",
                    f"127.0.0.1:{port}", "--envs", "4", "--backoff-max-s", "0.5"],
                   tmp_path / "actor.log")  # fmt: skip
    first = _start(command, tmp_path / "first.log", env)
    second = None
    try:
        # The first checkpoint comes after the first update, not after 600 s.
        latest = run_dir / "checkpoints" / "latest.json"
        wait_for(latest.is_file, 60, "the first checkpoint")
        at = json.loads(latest.read_text())["env_steps"]
        wait_for(lambda: max(_steps(run_dir), default=0) > at, 60, "reports past it")
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=30)
        assert max(_steps(run_dir)) > at
        second = _start(command, tmp_path / "second.log", env)  # the same command again
        log = tmp_path / "second.log"
        wait_for(lambda: "from checkpoint at step" in log.read_text(), 60, "the resume")
        assert f"resuming run {run_dir} (CartPole-v1 ppo seed 1, id " in log.read_text()
        assert f"checkpoint at step {at}" in log.read_text()
        wait_for(lambda: "past step" in log.read_text(), 60, "the reports past it dropped")
        assert max(_steps(run_dir), default=0) <= at
        wait_for(lambda: max(_steps(run_dir), default=0) > at, 60, "reports after resuming")
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=60)
        assert second.returncode == 0, log.read_text()[-3000:]
    finally:
        for proc in (first, actor, *([second] if second else [])):
            kill_tree(proc)
    steps = _steps(run_dir)
    assert steps == sorted(steps)

    before = _hashes(run_dir)
    monkeypatch.setenv("FLEETMIND_RUN_DIR", str(run_dir))
    assert main(["learner", "Acrobot-v1", *command[5:]]) == 2  # what the command runs
    error = capsys.readouterr().err.strip()
    assert "\n" not in error
    assert f"run directory {run_dir} holds another run (CartPole-v1 ppo" in error
    assert "than this one (Acrobot-v1 ppo" in error
    assert "env_id ('CartPole-v1' there, 'Acrobot-v1' here)" in error
    assert _hashes(run_dir) == before


def _start(
    argv: list[str], log_path: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[str]:
    with log_path.open("w") as log_file:
        return subprocess.Popen(
            argv, stdout=subprocess.DEVNULL, stderr=log_file, text=True, env=env
        )


def _steps(run_dir: Path) -> list[int]:
    path = run_dir / "metrics.jsonl"
    if not path.is_file():
        return []
    steps = []
    for line in path.read_text().splitlines():
        try:
            steps.append(int(json.loads(line)["env_steps"]))
        except (ValueError, KeyError):
            continue
    return steps


def _hashes(run_dir: Path) -> dict[str, str]:
    return {
        str(p.relative_to(run_dir)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(run_dir.rglob("*"))
        if p.is_file()
    }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
