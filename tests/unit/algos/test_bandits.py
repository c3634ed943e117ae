"""Bandit agents: online API, learning, persistence, comparison CLI and bad input."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from fleetmind.algos.bandits.compare import compare_bandits
from fleetmind.algos.bandits.policies import BANDIT_ALGOS, BanditConfig, load_bandit, make_bandit
from fleetmind.cli.main import main
from fleetmind.core.errors import ConfigError, InvalidInputError
from fleetmind.envs.bandit_env import KArmedTestbed, RewardTable


@pytest.mark.parametrize("algo", BANDIT_ALGOS)
def test_online_choose_update_finds_best_arm(algo: str) -> None:
    agent = make_bandit(BanditConfig(algo=algo, num_arms=3, seed=1))  # type: ignore[arg-type]
    source = np.random.default_rng(0)
    probs = [0.2, 0.8, 0.4]
    for _ in range(1500):
        arm = agent.choose()
        assert 0 <= arm < 3
        agent.update(arm, float(source.random() < probs[arm]))
    assert int(np.argmax(agent.counts)) == 1
    assert agent.steps == 1500


def test_ucb1_tries_every_arm_first() -> None:
    agent = make_bandit(BanditConfig(algo="ucb1", num_arms=4))
    arms = []
    for _ in range(4):
        arms.append(agent.choose())
        agent.update(arms[-1], 0.0)
    assert sorted(arms) == [0, 1, 2, 3]


def test_state_round_trip_through_json() -> None:
    agent = make_bandit(BanditConfig(algo="thompson-gaussian", num_arms=5, seed=3))
    for t in range(20):
        agent.update(agent.choose(), float(t % 3))
    clone = load_bandit(json.loads(json.dumps(agent.state_dict())))
    assert [agent.choose() for _ in range(10)] == [clone.choose() for _ in range(10)]


@pytest.mark.parametrize(
    ("arm", "reward", "message"),
    [
        (5, 1.0, "arm must be an integer in"),
        (-1, 1.0, "arm"),
        (1.5, 1.0, "arm"),
        (0, float("nan"), "finite"),
        (0, "x", "finite"),
    ],
)
def test_bad_updates(arm: object, reward: object, message: str) -> None:
    agent = make_bandit(BanditConfig(num_arms=3))
    with pytest.raises(InvalidInputError, match=message):
        agent.update(arm, reward)  # type: ignore[arg-type]


def test_bernoulli_thompson_rejects_rewards_outside_unit_interval() -> None:
    agent = make_bandit(BanditConfig(algo="thompson-bernoulli", num_arms=2))
    with pytest.raises(InvalidInputError, match=r"\[0, 1\]"):
        agent.update(0, 2.0)


@pytest.mark.parametrize(
    "change", [{"num_arms": 0}, {"epsilon": 1.5}, {"prior_std": 0.0}, {"algo": "greedy"}]
)
def test_bad_config(change: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        make_bandit(replace(BanditConfig(), **change))  # type: ignore[arg-type]


def test_regret_ucb_beats_uniform_exploration() -> None:
    curves = compare_bandits(
        ["ucb1", "epsilon-greedy"],
        lambda r: KArmedTestbed(5, "gaussian", seed=r),
        500,
        5,
        BanditConfig(epsilon=1.0),  # epsilon 1 = uniform random play
    )
    assert curves["ucb1"].shape == (500,)
    assert np.all(np.diff(curves["ucb1"]) >= 0)
    assert curves["ucb1"][-1] < 0.5 * curves["epsilon-greedy"][-1]


def test_reward_table_regret_against_best_arm_in_hindsight() -> None:
    table = RewardTable(np.array([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]]))
    assert table.best == 0
    assert table.pull(1) == 0.0
    assert table.regret(1) == 1.0
    with pytest.raises(InvalidInputError, match="non-finite value at step 1, arm 0"):
        RewardTable(np.array([[1.0, 0.0], [np.nan, 0.0]]))


def test_cli_writes_plot_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plot = tmp_path / "regret.png"
    code = main(
        ["bandit", "--steps", "50", "--runs", "2", "--plot", str(plot), "--json", "--num-arms", "4"]
    )
    assert code == 0
    out = json.loads(capsys.readouterr().out)
    assert set(out["final_regret"]) == {"epsilon-greedy", "ucb1", "thompson-gaussian"}
    assert plot.stat().st_size > 1000


def test_cli_reward_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rewards = tmp_path / "rewards.csv"
    rewards.write_text("\n".join("0.1,0.9,0.5" for _ in range(40)))
    code = main(
        [
            "bandit",
            "--rewards",
            str(rewards),
            "--steps",
            "40",
            "--runs",
            "1",
            "--plot",
            str(tmp_path / "r.png"),
            "--json",
            "--algos",
            "ucb1,thompson-bernoulli",
        ]
    )
    assert code == 0
    assert set(json.loads(capsys.readouterr().out)["final_regret"]) == {
        "ucb1",
        "thompson-bernoulli",
    }


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--algos", "thompson-bernoulli"], "--testbed bernoulli"),
        (["--algos", "best"], "unknown bandit 'best'"),
        (["--rewards", "missing.csv"], "does not exist"),
        (["--steps", "0"], "must be positive"),
        (["--epsilon", "2"], r"epsilon must be in \[0, 1\]"),
    ],
)
def test_cli_bad_input(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["bandit", "--plot", str(tmp_path / "p.png"), *argv]) == 2
    err = capsys.readouterr().err
    assert __import__("re").search(message, err)
    assert len(err.strip().splitlines()) == 1


def test_cli_malformed_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rewards = tmp_path / "bad.csv"
    rewards.write_text("1,2\n3\n")
    assert main(["bandit", "--rewards", str(rewards), "--plot", str(tmp_path / "p.png")]) == 2
    assert "bad.csv:2: 1 columns" in capsys.readouterr().err
