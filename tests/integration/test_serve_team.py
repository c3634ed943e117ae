"""Served teams: each agent as ``team.agent``, the whole team in one request, unknown
agents answered NOT_FOUND, and ``fleetmind eval --remote`` equal to the local one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from fleetmind.algos.team.loading import load_team
from fleetmind.cli.main import main
from fleetmind.core.errors import NotFoundError
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.evaluate import evaluate
from fleetmind.runtime.local import train
from fleetmind.serve.client import Client
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.repository import default_loader
from fleetmind.serve.testing import ServerThread

TEAM_ENV = "fleetmind/coordination-v0"


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("repo")
    train(
        TrainConfig(env_id=TEAM_ENV, algo="mappo", steps=400, envs=2, run_dir=root / "team" / "1"),
        progress=False,
    )
    train(TrainConfig(env_id="CartPole-v1", steps=400, envs=2, run_dir=root / "pole" / "1"))
    return root


@pytest.fixture(scope="module")
def server(repo: Path) -> Iterator[ServerThread]:
    config = ServeConfig(host="127.0.0.1", port=0, reload_interval_s=None)
    with ServerThread(repo, config, default_loader) as running:
        yield running


def test_each_agent_and_the_whole_team_are_models(repo: Path, server: ServerThread) -> None:
    team = load_team(repo / "team" / "1")
    names = team.spec.agents
    rng = np.random.default_rng(0)
    obs = {
        n: rng.normal(size=(5, *team.spec.observation_spaces[i].shape)).astype(np.float32)
        for i, n in enumerate(names)
    }
    local = team.team.act_batch(obs)
    # explanations run below any other work (SCHED_IDLE): slow beside busy processes
    with Client(f"127.0.0.1:{server.port}", timeout_s=120) as client:
        whole = client.model_metadata("team")
        assert whole.inputs[0].shape == (-1, len(names), *team.spec.observation_spaces[0].shape)
        stacked = np.stack([obs[n] for n in names], axis=1)
        together = client.infer("team", stacked)
        assert together["action"].shape == (5, len(names))
        for i, name in enumerate(names):
            info = client.model_metadata(f"team.{name}")
            assert info.inputs[0].shape == (-1, *team.spec.observation_spaces[i].shape)
            alone = client.infer(f"team.{name}", obs[name])
            np.testing.assert_array_equal(alone["action"], local[name])
            np.testing.assert_array_equal(together["action"][:, i], local[name])
            explained = client.infer(f"team.{name}", obs[name], explain=True)
            assert explained["attributions"].shape == obs[name].shape


def test_an_unknown_agent_is_not_found_listing_the_agents(repo: Path, server: ServerThread) -> None:
    names = load_team(repo / "team" / "1").spec.agents
    with Client(f"127.0.0.1:{server.port}") as client:
        with pytest.raises(NotFoundError, match="has no agent 'nobody'") as caught:
            client.infer("team.nobody", np.zeros((1, 1), np.float32))
        for name in names:
            assert f"team.{name}" in str(caught.value)
        assert client.server_ready()


@pytest.mark.parametrize("model", ["team", "pole"])
def test_remote_evaluation_gives_the_local_returns(
    repo: Path, server: ServerThread, model: str, capsys: pytest.CaptureFixture[str]
) -> None:
    run = repo / model / "1"
    local = evaluate(run, episodes=4, seed=3)
    target = f"127.0.0.1:{server.port}"
    args = ["eval", str(run), "--episodes", "4", "--seed", "3", "--json"]
    assert main([*args, "--remote", target, "--remote-model", model]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote["mean_return"] == pytest.approx(local.mean_return, abs=1e-9)
    assert remote["std_return"] == pytest.approx(local.std_return, abs=1e-9)
