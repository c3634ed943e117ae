"""Multi-agent training end to end: CLI, metrics, checkpoints, resume, eval, load,
and every bad input."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import fleetmind
from fleetmind.algos.loading import load_agent
from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.algos.team.ippo import IPPOConfig
from fleetmind.algos.team.loading import TeamAgent, load_team
from fleetmind.algos.team.mappo import MAPPOConfig
from fleetmind.cli.main import main
from fleetmind.core.errors import ConfigError, InvalidInputError, PreconditionError
from fleetmind.envs.env_entry import EnvEntry, team_entry
from fleetmind.envs.registry import REGISTRY
from fleetmind.runtime.run_dir import RunDir, read_metrics

from .games import MixedGame, ShiftingGame

COORD = "fleetmind/coordination-v0"
TINY = ["--steps", "320", "--envs", "4", "--log-interval-s", "0.001"]
MAPPO_TINY = ["--mappo.rollout-steps", "20", "--mappo.minibatch-size", "64"]


def run_cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(list(argv))
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_train_eval_resume_load_mappo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    run = tmp_path / "run"
    code, out, err = run_cli(
        capsys, "train", COORD, "--algo", "mappo", "--run-dir", str(run), *TINY, *MAPPO_TINY
    )
    assert code == 0, err
    summary = json.loads(out)
    # 80 vector steps per copy; an episode takes 10 steps plus the autoreset step
    assert summary["env_steps"] == 320
    assert summary["episodes"] == 4 * (80 // 11)
    records = read_metrics(run)
    last = records[-1]
    assert {"return_mean/agent_0", "return_mean/agent_1", "episode_return_mean"} <= set(last)
    assert last["episode_return_mean"] == pytest.approx(
        last["return_mean/agent_0"] + last["return_mean/agent_1"]
    )
    assert any("policy_loss" in r for r in records)
    code, out, _ = run_cli(capsys, "eval", str(run), "--episodes", "3", "--json")
    assert code == 0
    result = json.loads(out)
    assert result["episodes"] == 3
    assert 0.0 <= result["mean_return"] <= 20.0
    code, out, err = run_cli(capsys, "train", "--resume", str(run), "--steps", "480")
    assert code == 0, err
    assert json.loads(out)["env_steps"] == 480
    team = fleetmind.load(run)
    assert isinstance(team, TeamAgent)
    assert team.names == ["agent_0", "agent_1"]
    obs = np.eye(9, dtype=np.float32)[0]
    actions = team.act({"agent_0": obs, "agent_1": obs})
    assert set(actions) == {"agent_0", "agent_1"}
    assert 0 <= int(actions["agent_0"]) < 3
    batch = team.act_batch({"agent_1": np.stack([obs, obs])})
    assert batch["agent_1"].shape == (2,)
    loaded = load_team(run)
    assert loaded.algo == "mappo"
    assert loaded.env_steps == 480
    assert loaded.version > 0
    with pytest.raises(InvalidInputError, match="unknown agents"):
        team.act({"agent_9": obs})
    with pytest.raises(InvalidInputError, match="shape"):
        team.act({"agent_0": np.zeros(4, np.float32)})
    with pytest.raises(PreconditionError, match="multi-agent team"):
        load_agent(run)


def test_ippo_on_mpe2_with_experience_sharing(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run = tmp_path / "run"
    code, _, err = run_cli(
        capsys, "train", "mpe2/simple_spread_v3", "--algo", "ippo", "--ippo.experience-sharing",
        "--ippo.rollout-steps", "26", "--ippo.update-epochs", "1", "--run-dir", str(run),
        "--steps", "104", "--envs", "2",
    )  # fmt: skip
    assert code == 0, err
    config = json.loads((run / "config.json").read_text())
    assert config["ippo"]["experience_sharing"] is True
    assert {f"return_mean/agent_{i}" for i in range(3)} <= set(read_metrics(run)[-1])
    code, _, err = run_cli(capsys, "train", "--resume", str(run), "--steps", "156")
    assert code == 0, err
    state = RunDir(run).checkpoints.load_latest()
    assert state["env_steps"] == 156
    assert sorted(state["normalizers"]) == ["__state__", "agent_0", "agent_1", "agent_2"]
    assert len(state["learner"]["nets"]) == 3
    team = fleetmind.load(run)
    assert isinstance(team, TeamAgent)
    assert len(team.agents) == 3


def test_heterogeneous_continuous_team_trains_without_sharing(
    tmp_path: Path, register_env: Callable[[EnvEntry], None]
) -> None:
    register_env(team_entry("test/mixed-v0", MixedGame))
    cfg = IPPOConfig(rollout_steps=16, minibatch_size=16, update_epochs=2)
    result = fleetmind.train(
        "test/mixed-v0", algo="ippo", algo_config=cfg, steps=64, envs=2,
        run_dir=str(tmp_path / "r"), progress=False,
    )  # fmt: skip
    assert result.env_steps == 64
    team = fleetmind.load(tmp_path / "r")
    assert isinstance(team, TeamAgent)
    act = team.act({"switch_0": np.eye(4, dtype=np.float32)[0], "pilot_0": np.zeros(4)})
    assert act["pilot_0"].shape == (1,)
    assert -1.0 <= float(act["pilot_0"][0]) <= 1.0
    with pytest.raises(ConfigError, match="identical observation and action spaces"):
        fleetmind.train("test/mixed-v0", algo="mappo", steps=64, run_dir=str(tmp_path / "s"))
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("argv", "fragment"),
    [
        (
            ["mpe2/simple_speaker_listener_v4", "--algo", "mappo"],
            "parameter sharing needs agents with identical observation and action spaces",
        ),
        ([COORD, "--algo", "ppo"], "ppo is a single-agent algorithm"),
        ([COORD, "--algo", "dqn"], "dqn is a single-agent algorithm"),
        (["CartPole-v1", "--algo", "mappo"], "mappo trains multi-agent (PettingZoo) environments"),
        ([COORD, "--algo", "mappo", "--mappo.experience-sharing"], "experience_sharing needs"),
        (["mpe2/simple_sprad_v3", "--algo", "mappo"], "mpe2/simple_spread_v3"),
    ],
)
def test_bad_inputs_get_one_line_and_no_run_dir(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, argv: list[str], fragment: str
) -> None:
    run = tmp_path / "r"
    code, _, err = run_cli(capsys, "train", *argv, "--run-dir", str(run), "--steps", "64")
    assert code == 2
    assert fragment in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
    assert not run.exists()


def test_envs_lists_multiagent_ids(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run_cli(capsys, "envs", "--json")
    ids = json.loads(out)
    assert code == 0
    assert ids["mpe2/simple_spread_v3"].startswith("mpe2")
    assert ids[COORD] == "fleetmind scenario"


# coordination-v0 and simple_spread train in the tests above, traffic in its own below
COVERED = {COORD, "mpe2/simple_spread_v3"}
TEAMS = {e.env_id for e in REGISTRY.listed() if e.is_team and not e.family.startswith("traffic")}


@pytest.mark.parametrize("env_id", sorted(TEAMS - COVERED))
def test_every_listed_multiagent_env_trains_and_evaluates(tmp_path: Path, env_id: str) -> None:
    cfg = IPPOConfig(rollout_steps=8, minibatch_size=16, update_epochs=1)
    run = tmp_path / "run"
    result = fleetmind.train(
        env_id, algo="ippo", algo_config=cfg, steps=32, envs=2, run_dir=run, progress=False
    )
    assert result.env_steps == 32
    team = fleetmind.load(run)
    assert isinstance(team, TeamAgent)
    assert fleetmind.evaluate(run, episodes=1).episodes == 1


def test_traffic_scenario_trains_as_a_team_and_with_single_agent_ppo(tmp_path: Path) -> None:
    cfg = MAPPOConfig(rollout_steps=16, minibatch_size=64, update_epochs=1)
    result = fleetmind.train(
        "traffic-single", algo="mappo", algo_config=cfg, steps=32, envs=2,
        run_dir=tmp_path / "team", progress=False,
    )  # fmt: skip
    assert result.env_steps == 32
    assert isinstance(fleetmind.load(tmp_path / "team"), TeamAgent)
    ppo = fleetmind.train(
        "traffic-single", algo="ppo", algo_config=PPOConfig(rollout_steps=8, minibatch_size=8),
        steps=16, envs=2, run_dir=tmp_path / "ppo", progress=False,
    )  # fmt: skip
    assert ppo.env_steps >= 16


def _counts(saved: object) -> list[float]:
    """Sample counts of a checkpoint's normaliser entry (one, or one per agent)."""
    assert isinstance(saved, dict)
    entries = [saved] if "count" in saved else list(saved.values())
    return [float(entry["count"]) for entry in entries]


@pytest.mark.parametrize(
    ("env_id", "algo", "config", "key"),
    [
        ("CartPole-v1", "ppo", PPOConfig(rollout_steps=16, minibatch_size=64), "reward_normalizer"),
        (
            "mpe2/simple_spread_v3",
            "ippo",
            IPPOConfig(rollout_steps=16, minibatch_size=64),
            "reward_normalizers",
        ),
    ],
    ids=["single", "team"],
)
def test_reward_normalisation_is_checkpointed_and_resumed(
    tmp_path: Path, env_id: str, algo: str, config: object, key: str
) -> None:
    run = tmp_path / "run"
    fleetmind.train(
        env_id, algo=algo, algo_config=config, steps=128, envs=2, normalize_reward=True,
        run_dir=str(run), progress=False,
    )  # fmt: skip
    store = RunDir.open_existing(run).checkpoints
    saved = store.load_latest()
    before = _counts(saved[key])
    assert all(count > 0 for count in before)
    fleetmind.resume(run, steps=256, progress=False)
    after = _counts(store.load_latest()[key])
    assert len(after) == len(before)
    # the statistics continued from the checkpoint rather than restarting
    assert all(a > b for a, b in zip(after, before, strict=True))


def test_a_team_whose_agents_change_gets_one_line_and_exit_2(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    register_env: Callable[[EnvEntry], None],
) -> None:
    register_env(team_entry("test/shifting-v0", ShiftingGame))
    code, _, err = run_cli(
        capsys, "train", "test/shifting-v0", "--algo", "ippo", "--run-dir", str(tmp_path / "r"),
        "--steps", "64", "--envs", "1", "--ippo.rollout-steps", "8",
    )  # fmt: skip
    assert code == 2
    assert "has acting agents ['newcomer'] that are not among its possible_agents" in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
