"""Bad distributed settings get one line on stderr and exit code 2, before any run starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleetmind.cli.main import main


@pytest.mark.parametrize(
    ("argv", "words"),
    [
        (["train", "CartPole-v1", "--actors", "2", "--mode", "async"], "--algo impala"),
        (["train", "CartPole-v1", "--actors", "2", "--algo", "impala"], "--mode async"),
        (["train", "CartPole-v1", "--actors", "-1"], "--actors"),
        (["train", "CartPole-v1", "--actors", "2", "--learners", "0"], "--learners must be >= 1"),
        (["train", "CartPole-v1", "--actors", "2", "--learners", "3"], "needs at least 3 actors"),
        (["train", "CartPole-v1", "--learners", "2"], "needs at least 2 actors"),
        (
            ["train", "CartPole-v1", "--actors", "2", "--learners", "2", "--algo", "dqn"],
            "--learners > 1 shares PPO, MAPPO or IPPO (--mode sync) or IMPALA",
        ),
        (["train", "CartPole-v1", "--actors", "2", "--mode", "fast"], "mode"),
        (
            ["train", "CartPole-v1", "--actors", "1", "--algo", "dqn"],
            "--algo dqn cannot train with actors",
        ),
        (["train", "FrozenLake-v1", "--actors", "1", "--algo", "q_learning"], "--actors 0"),
        (["actor"], "--learner HOST:PORT"),
        (["actor", "--learner", "127.0.0.1:1", "--push-queue", "-1"], "--push-queue must be 0"),
        (["learner", "--listen", "127.0.0.1:0"], "environment id"),
        (
            ["learner", "CartPole-v1", "--listen", "127.0.0.1:0", "--algo", "dqn"],
            "--algo dqn cannot train with actors",
        ),
        (["learner", "CartPole-v1", "--listen", "127.0.0.1:0", "--algo", "impala"], "--mode async"),
        (["train", "CartPole-v1", "--mode", "async", "--algo", "impala"], "add --actors N"),
    ],
)
def test_bad_settings_exit_2(
    argv: list[str], words: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main([*argv, *(["--run-dir", str(tmp_path / "run")] if argv[0] != "actor" else [])])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()


def test_actor_settings_from_environment_are_checked(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FLEETMIND_LEARNER", "127.0.0.1:1")
    monkeypatch.setenv("FLEETMIND_ENVS", "many")
    assert main(["actor"]) == 2
    assert "FLEETMIND_ENVS" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("environ", "words"),
    [
        ({"WORLD_SIZE": "2", "RANK": "1", "MASTER_PORT": "29500"}, "MASTER_ADDR is not set"),
        ({"WORLD_SIZE": "2"}, "RANK, MASTER_ADDR, MASTER_PORT are not set"),
        ({"RANK": "1", "MASTER_ADDR": "h"}, "RANK, MASTER_ADDR are set but WORLD_SIZE is not"),
        ({"WORLD_SIZE": "two"}, "WORLD_SIZE='two' must be an integer"),
        ({"WORLD_SIZE": "2", "RANK": "2", "MASTER_ADDR": "h", "MASTER_PORT": "1"}, "RANK=2"),
    ],
)
def test_learner_of_a_group_needs_torchrun_variables(
    environ: dict[str, str],
    words: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    for key in ("WORLD_SIZE", "RANK", "MASTER_ADDR", "MASTER_PORT", "LOCAL_RANK"):
        monkeypatch.delenv(key, raising=False)
    for key, value in environ.items():
        monkeypatch.setenv(key, value)
    code = main(["learner", "CartPole-v1", "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2
    assert words in err
    assert "Traceback" not in err
    assert not (tmp_path / "run").exists()
