"""Several learners with real processes: shared updates, identical parameters, faults."""

from __future__ import annotations

import json
import os
import re
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

FINAL = re.compile(
    r"learner (\d) of 2 finished at version (\d+); weights sha256 ([0-9a-f]{64}); "
    r"obs stats sha256 ([0-9a-f]{64})"
)


def _finals(logs: list[str]) -> list[tuple[int, int, str]]:
    """(rank, version, weights + normaliser digests) of each learner's final line."""
    found = []
    for text in logs:
        match = FINAL.search(text)
        assert match is not None, text[-3000:]
        found.append((int(match[1]), int(match[2]), f"{match[3]}/{match[4]}"))
    return found


TEAM = (
    "mpe2/simple_spread_v3", "--algo", "mappo", "--mode", "sync", "--mappo.rollout-steps", "16",
    "--mappo.update-epochs", "2", "--mappo.minibatch-size", "64",
)  # fmt: skip
ASYNC_TEAM = (
    "mpe2/simple_spread_v3", "--mode", "async", "--algo", "team-impala",
    "--no-team-impala.share-parameters", "--team-impala.rollout-steps", "16",
)  # fmt: skip


@pytest.mark.parametrize(
    "mode",
    [
        ("CartPole-v1", "--mode", "sync", *FAST),
        TEAM,
        pytest.param(
            ("CartPole-v1", "--mode", "async", "--algo", "impala", "--impala.rollout-steps", "16"),
            marks=pytest.mark.slow,
        ),
        pytest.param(ASYNC_TEAM, marks=pytest.mark.slow),
    ],
    ids=["sync-ppo", "sync-mappo-team", "async-impala", "async-team-impala"],
)
def test_two_learners_train_with_identical_parameters(
    tmp_path: Path, mode: tuple[str, ...]
) -> None:
    run_dir = tmp_path / "run"
    proc = fleetmind(
        "train", *mode[:1], "--actors", "2", "--learners", "2", "--envs", "8",
        "--steps", "2500", "--run-dir", str(run_dir), "--log-interval-s", "0.3", *mode[1:],
    )  # fmt: skip
    try:
        out, err = proc.communicate(timeout=240)
    finally:
        kill_tree(proc)
    assert proc.returncode == 0, err[-3000:]
    summary = json.loads(out.strip().splitlines()[-1])
    assert summary["env_steps"] >= 2500
    logs = [(run_dir / "learners" / f"learner-{r}.log").read_text() for r in range(2)]
    (rank0, v0, sha0), (rank1, v1, sha1) = _finals(logs)
    assert (rank0, rank1) == (0, 1)
    assert v0 == v1 >= 3  # versions in lockstep
    assert sha0 == sha1  # the same parameters and normaliser statistics on both learners
    assert "actor actor-0 registered" in logs[0]
    assert "actor actor-1 registered" in logs[1]
    # Rank 0 alone writes the run directory.
    assert len(list(run_dir.glob("events.out.tfevents.*"))) == 1
    assert (run_dir / "summary.json").is_file()
    assert (run_dir / "checkpoints").is_dir()
    assert latest_version(run_dir) == v0


def _group_env(rank: int, port: int) -> dict[str, str]:
    return {
        **os.environ, "RANK": str(rank), "LOCAL_RANK": str(rank), "WORLD_SIZE": "2",
        "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "PYTHONUNBUFFERED": "1",
    }  # fmt: skip


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _address(proc: subprocess.Popen[str]) -> str:
    stream = proc.stdout
    assert stream is not None
    line = stream.readline()
    return str(json.loads(line)["listening"])


@pytest.mark.slow
def test_learner_whose_actors_died_still_takes_part(tmp_path: Path) -> None:
    """Learners started as torchrun starts them; one loses its only actor and the run goes on."""
    run_dir = tmp_path / "run"
    port = _free_port()
    logs = [tmp_path / f"learner-{r}.log" for r in range(2)]
    args = (
        "--listen", "127.0.0.1:0", "--run-dir", str(run_dir), "--steps", "100000000",
        "--envs", "8", "--actor-timeout-s", "2", "--sync-timeout-s", "2", *FAST,
    )  # fmt: skip
    learners = []
    for rank in range(2):
        with logs[rank].open("w") as fh:
            learners.append(
                subprocess.Popen(
                    [sys.executable, "-m", "fleetmind", "learner", "CartPole-v1", *args],
                    stdout=subprocess.PIPE,
                    stderr=fh,
                    text=True,
                    env=_group_env(rank, port),
                )
            )
    actors: list[subprocess.Popen[str]] = []
    try:
        addresses = [_address(p) for p in learners]
        actors = [
            fleetmind("actor", "--learner", addresses[k], "--envs", "4", "--actor-id", f"a{k}")
            for k in range(2)
        ]
        wait_for(lambda: latest_version(run_dir) >= 3, 180, "three shared updates")
        actors[1].kill()  # learner 1 has no actor left
        wait_for(lambda: "dropped" in logs[1].read_text(), 60, "learner 1 to drop its actor")
        dropped_at = latest_version(run_dir)
        wait_for(lambda: latest_version(run_dir) >= dropped_at + 3, 120, "updates without it")
        learners[1].send_signal(signal.SIGTERM)  # one learner stops: the group stops
        for proc, log in zip(learners, logs, strict=True):
            ended_interrupted(proc, log)
    finally:
        for p in [*actors, *learners]:
            kill_tree(p)
    (_, v0, sha0), (_, v1, sha1) = _finals([log.read_text() for log in logs])
    assert v0 == v1 > dropped_at + 2
    assert sha0 == sha1


@pytest.mark.slow
def test_killed_learner_stops_the_run_and_resume_restarts_all(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    args = ("--actors", "2", "--learners", "2", "--envs", "8", "--checkpoint-interval-s", "1")
    proc = fleetmind(
        "train", "CartPole-v1", *args, "--steps", "100000000", "--run-dir", str(run_dir), *FAST
    )
    try:
        wait_for(lambda: latest_version(run_dir) >= 5, 180, "five shared updates")
        learner_1 = next(
            pid
            for pid in children(proc.pid)
            if "learner" in Path(f"/proc/{pid}/cmdline").read_text()
            and "RANK=1" in Path(f"/proc/{pid}/environ").read_text().replace("\0", " ")
        )
        os.kill(learner_1, signal.SIGKILL)
        _, err = proc.communicate(timeout=180)
    finally:
        kill_tree(proc)
    assert proc.returncode == 2, err[-3000:]
    line = err.strip().splitlines()[-1]
    assert "learner 1 exited with code -9" in line
    assert f"--resume {run_dir}" in line
    assert "Traceback" not in line
    log0 = (run_dir / "learners" / "learner-0.log").read_text()
    assert "learner group broken: final checkpoint at version" in log0
    stopped_at = int(re.findall(r"final checkpoint at version (\d+)", log0)[-1])
    metrics = (run_dir / "metrics.jsonl").read_text().splitlines()
    steps_at = max(int(json.loads(x)["env_steps"]) for x in metrics)
    resumed = fleetmind("train", "--resume", str(run_dir), "--steps", str(steps_at + 600))
    try:
        out, err = resumed.communicate(timeout=240)
    finally:
        kill_tree(resumed)
    assert resumed.returncode == 0, err[-3000:]
    assert json.loads(out.strip().splitlines()[-1])["env_steps"] >= steps_at + 600
    logs = [(run_dir / "learners" / f"learner-{r}.log").read_text() for r in range(2)]
    finals = [m for text in logs for m in FINAL.findall(text)]
    (_, v0, sha0, obs0), (_, v1, sha1, obs1) = finals[-2:]
    assert obs0 == obs1
    assert int(v0) == int(v1) > stopped_at  # both went on from rank 0's final checkpoint
    assert sha0 == sha1
