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
        (["train", "CartPole-v1", "--actors", "2", "--learners", "2"], "--learners"),
        (["train", "CartPole-v1", "--actors", "2", "--mode", "fast"], "mode"),
        (["actor"], "--learner HOST:PORT"),
        (["learner", "--listen", "127.0.0.1:0"], "environment id"),
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
