"""``fleetmind edge`` against a real server: a run, an unreachable target, a wrong shape."""

from __future__ import annotations

import json
import logging
import socket
from pathlib import Path

import numpy as np
import pytest

from fleetmind.cli.main import main
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.offloading import EdgeConfig, OffloadingClient
from fleetmind.serve.testing import ServerThread, toy_agent, write_toy_checkpoint

LOADER = "fleetmind.serve.testing:toy_loader"


def _edge(run_dir: Path, *remotes: str, episodes: int = 1) -> list[str]:
    args = ["edge", str(run_dir), "--model", "m", "--loader", LOADER, "--env", "CartPole-v1"]
    for remote in remotes:
        args += ["--remote", remote]
    return [*args, "--episodes", str(episodes), "--deadline-ms", "500", "--json"]


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def local_run(tmp_path: Path) -> Path:
    write_toy_checkpoint(tmp_path / "local", seed=3)
    return tmp_path / "local"


def test_edge_runs_episodes_and_reports_where_decisions_ran(
    tmp_path: Path, local_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_toy_checkpoint(tmp_path / "served", seed=3)
    config = ServeConfig(host="127.0.0.1", port=0, model_name="m", reload_interval_s=None)
    with ServerThread(tmp_path / "served", config) as server:
        assert main(_edge(local_run, f"127.0.0.1:{server.port}", episodes=2)) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["episodes"] == 2
    assert sum(summary["decisions"].values()) == sum(summary["returns"])  # CartPole: 1 a step
    assert set(summary["decisions"]) <= {"local", f"127.0.0.1:{server.port}"}
    assert summary["mean_decision_latency_ms"] > 0


def test_remote_answers_are_the_served_models_actions(tmp_path: Path) -> None:
    # A slow local model (20 ms a decision, asleep: the same on any machine) and another
    # policy served: the loopback call is faster, and its actions must be the served policy's.
    write_toy_checkpoint(tmp_path / "slow", seed=3, delay_s=0.02)
    write_toy_checkpoint(tmp_path / "served", seed=9)
    served = toy_agent(seed=9)
    config = ServeConfig(host="127.0.0.1", port=0, model_name="m", reload_interval_s=None)
    with ServerThread(tmp_path / "served", config) as server:
        client = OffloadingClient.connect(
            tmp_path / "slow", [f"127.0.0.1:{server.port}"], "m", EdgeConfig(deadline_s=1.0),
            loader=LOADER,
        )  # fmt: skip
        with client:
            observations = np.random.default_rng(0).normal(size=(200, 4)).astype(np.float32)
            decisions = [client.decide(obs) for obs in observations]
    remote = [i for i, d in enumerate(decisions) if d.place != "local"]
    assert remote, "no decision ran remotely"
    expected = served.decide_batch(observations[remote]).actions
    np.testing.assert_array_equal([decisions[i].action for i in remote], expected)


def test_an_unreachable_target_starts_on_local_and_says_so(
    local_run: Path, capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture
) -> None:
    target = f"127.0.0.1:{_closed_port()}"
    with caplog.at_level(logging.WARNING):
        assert main(_edge(local_run, target)) == 0
    assert f"remote {target} is unreachable at start" in caplog.text
    assert json.loads(capsys.readouterr().out)["decisions"].keys() == {"local"}


def test_a_target_of_another_observation_shape_is_refused_at_start(
    tmp_path: Path, local_run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_toy_checkpoint(tmp_path / "slow", seed=3, obs_dim=6)
    config = ServeConfig(host="127.0.0.1", port=0, model_name="m", reload_interval_s=None)
    with ServerThread(tmp_path / "slow", config) as server:
        assert main(_edge(local_run, f"127.0.0.1:{server.port}")) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert "takes observations of shape [6] but the local agent takes [4]" in err


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [
        ("--deadline-ms", "0", "--deadline-ms must be a positive number"),
        ("--episodes", "0", "--episodes must be a positive integer"),
        ("--env", "NoSuchEnv-v0", "cannot make environment 'NoSuchEnv-v0'"),
    ],
)
def test_bad_flags_are_one_line_errors(
    local_run: Path, capsys: pytest.CaptureFixture[str], flag: str, value: str, message: str
) -> None:
    args = _edge(local_run, f"127.0.0.1:{_closed_port()}")
    args[args.index(flag) + 1] = value
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err, err
