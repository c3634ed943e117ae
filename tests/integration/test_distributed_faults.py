"""Faults with real processes: actors killed mid-run, learners killed and resumed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.procs import (
    FAST,
    children,
    ended_interrupted,
    fleetmind,
    kill_tree,
    latest_version,
    wait_for,
)


def test_killed_actor_is_restarted_and_training_finishes(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    log_path = tmp_path / "stderr.log"
    with log_path.open("w") as log_file:
        proc = subprocess.Popen(
            [sys.executable, "-m", "fleetmind", "train", "CartPole-v1", "--actors", "3",
             "--envs", "6", "--steps", "100000000", "--run-dir", str(run_dir),
             "--actor-timeout-s", "2", "--sync-timeout-s", "3", *FAST],
            stdout=subprocess.PIPE, stderr=log_file, text=True,
        )  # fmt: skip

    def registrations() -> int:
        return log_path.read_text().count("registered (session")

    try:
        wait_for(lambda: latest_version(run_dir) >= 2, 120, "two updates")
        actors = children(proc.pid)
        assert len(actors) == 3
        # The first actors are forks of the launcher (its command line); a restart,
        # while the learner serves, is a fresh ``fleetmind actor`` interpreter.
        assert all(b" actor " not in _cmdline(pid) for pid in actors)
        os.kill(actors[0], signal.SIGKILL)
        killed_at = latest_version(run_dir)
        # The others keep training while the launcher restarts the killed actor.
        wait_for(lambda: registrations() >= 4, 180, "the restarted actor to register again")
        restarted = set(children(proc.pid)) - set(actors)
        assert restarted
        assert all(b" actor " in _cmdline(pid) for pid in restarted)
        rejoined_at = latest_version(run_dir)
        wait_for(lambda: latest_version(run_dir) >= rejoined_at + 3, 120, "updates after rejoin")
        proc.send_signal(signal.SIGTERM)
        _, err = ended_interrupted(proc, log_path)
    finally:
        kill_tree(proc)
    assert latest_version(run_dir) > killed_at
    assert "exited with -9; restarting" in err


def _cmdline(pid: int) -> bytes:
    return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")


@pytest.mark.slow
def test_killed_actor_run_still_reaches_its_target(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    proc = fleetmind(
        "train", "CartPole-v1", "--actors", "3", "--envs", "12", "--steps", "300000",
        "--target-return", "200", "--run-dir", str(run_dir), "--actor-timeout-s", "2",
        "--log-interval-s", "1",
    )  # fmt: skip
    try:
        wait_for(lambda: latest_version(run_dir) >= 10, 180, "ten updates")
        os.kill(children(proc.pid)[1], signal.SIGKILL)
        out, err = proc.communicate(timeout=900)
    finally:
        kill_tree(proc)
    assert proc.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["solved"]
    assert "exited with -9; restarting" in err


@pytest.mark.slow
def test_killed_learner_resumes_and_actors_reconnect(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    port = _free_port()
    common = ("--listen", f"127.0.0.1:{port}", "--checkpoint-interval-s", "1")
    learner = fleetmind(
        "learner", "CartPole-v1", "--run-dir", str(run_dir), "--steps", "20000", "--envs", "8",
        *common, *FAST,
    )  # fmt: skip
    actors = [
        fleetmind("actor", "--learner", f"127.0.0.1:{port}", "--envs", "4",
                  "--actor-id", f"a{i}", "--backoff-max-s", "1")
        for i in range(2)
    ]  # fmt: skip
    resumed = None
    try:
        wait_for((run_dir / "checkpoints" / "latest.json").is_file, 120, "a checkpoint")
        wait_for(lambda: latest_version(run_dir) >= 5, 120, "five updates")
        learner.kill()
        learner.communicate(timeout=30)
        resumed = fleetmind("learner", "--resume", str(run_dir), *common)
        out, err = resumed.communicate(timeout=300)
        assert resumed.returncode == 0, err[-3000:]
        summary = json.loads(out.strip().splitlines()[-1])
        assert summary["env_steps"] >= 20000
        for actor in actors:
            _a_out, a_err = actor.communicate(timeout=60)
            assert actor.returncode == 0, a_err[-2000:]
            assert "registering again" in a_err or "unreachable" in a_err
    finally:
        for p in [learner, *actors, *([resumed] if resumed else [])]:
            kill_tree(p)


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
