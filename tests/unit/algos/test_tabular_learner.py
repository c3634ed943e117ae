"""Q-learning and SARSA through the shared trainer: run dir, eval, serving outputs."""

from pathlib import Path

import numpy as np
import pytest

import fleetmind
from fleetmind.algos.loading import load_agent
from fleetmind.algos.tabular.learner import TabularLearner, TabularLearnerConfig
from fleetmind.algos.tabular.planning import PlanningConfig, value_iteration
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import ConfigError, InvalidInputError
from fleetmind.core.spaces import SpaceSpec
from fleetmind.envs.finite_mdp import from_gymnasium

ONE_HOT_3 = SpaceSpec("box", (3,), "int64", low=(0.0,) * 3, high=(1.0,) * 3)
TWO_ACTIONS = SpaceSpec("discrete", (), "int64", n=2)


def _step(
    state: int, action: int, reward: float, next_value: float, terminated: bool
) -> Trajectory:
    obs = np.zeros((1, 1, 3), dtype=np.float32)
    obs[0, 0, state] = 1.0
    flag = np.array([[terminated]])
    return Trajectory(
        obs=obs, actions=np.array([[action]]), log_probs=np.zeros((1, 1), np.float32),
        values=np.zeros((1, 1), np.float32), rewards=np.array([[reward]], np.float32),
        terminated=flag, truncated=np.zeros((1, 1), bool), valid=np.ones((1, 1), bool),
        next_values=np.array([[next_value]], np.float32),
    )  # fmt: skip


def test_update_hand_computed() -> None:
    learner = TabularLearner(
        TabularLearnerConfig(learning_rate=0.5, gamma=0.9), ONE_HOT_3, TWO_ACTIONS, 0, sarsa=False
    )
    learner.update(_step(state=1, action=0, reward=1.0, next_value=2.0, terminated=False))
    assert learner.q[1, 0] == pytest.approx(0.5 * (1.0 + 0.9 * 2.0))
    learner.update(_step(state=1, action=0, reward=1.0, next_value=100.0, terminated=True))
    assert learner.q[1, 0] == pytest.approx(1.4 + 0.5 * (1.0 - 1.4))  # no bootstrap


def test_sarsa_bootstraps_on_the_chosen_action_and_q_learning_on_the_max() -> None:
    obs = np.eye(3, dtype=np.float32)[[0]]
    for sarsa in (False, True):
        learner = TabularLearner(
            TabularLearnerConfig(epsilon_start=1.0, epsilon_end=1.0),
            ONE_HOT_3,
            TWO_ACTIONS,
            0,
            sarsa,
        )
        learner.q[0] = [1.0, 5.0]
        values = [learner.rollout_policy().step(obs) for _ in range(50)]
        chosen = {(int(v.actions[0]), float(v.values[0])) for v in values}
        expected = {(0, 1.0), (1, 5.0)} if sarsa else {(0, 5.0), (1, 5.0)}
        assert chosen == expected


def test_bad_inputs() -> None:
    box = SpaceSpec("box", (4,), "float32", low=(-1.0,) * 4, high=(1.0,) * 4)
    with pytest.raises(ConfigError, match="needs a Discrete observation space"):
        TabularLearner(TabularLearnerConfig(), box, TWO_ACTIONS, 0, sarsa=False)
    learner = TabularLearner(TabularLearnerConfig(), ONE_HOT_3, TWO_ACTIONS, 0, sarsa=False)
    with pytest.raises(InvalidInputError, match="one-hot"):
        learner.rollout_policy().step(np.ones((1, 3), np.float32))
    with pytest.raises(ConfigError, match="learning_rate"):
        TabularLearnerConfig(learning_rate=0.0).validate()


@pytest.mark.parametrize("algo", ["q_learning", "sarsa"])
def test_trains_cliffwalking_to_the_planned_optimum(tmp_path: Path, algo: str) -> None:
    run = tmp_path / "run"
    config = TabularLearnerConfig(learning_rate=0.5, gamma=1.0, epsilon_start=0.2, epsilon_end=0.0,
                                  exploration_steps=20_000)  # fmt: skip
    fleetmind.train(
        "CliffWalking-v1", algo=algo, steps=30_000, envs=4, run_dir=run, algo_config=config
    )
    planned = value_iteration(from_gymnasium("CliffWalking-v1"), PlanningConfig(gamma=1.0))
    loaded = load_agent(run)
    assert loaded.algo == algo
    result = fleetmind.evaluate(run, episodes=2)
    if algo == "q_learning":  # off-policy: the optimal path along the cliff
        assert result.mean_return == pytest.approx(planned.values[36])  # start state: -13
    else:  # on-policy with exploration: the classic safe path, away from the cliff
        assert planned.values[36] - 4 <= result.mean_return < planned.values[36]
    decision = loaded.agent.decide_batch(np.eye(48, dtype=np.float32)[[36]])
    assert set(decision.outputs) == {"q_values", "value"}


def test_cli_refuses_continuous_observations(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fleetmind.cli.main import main

    code = main(["train", "CartPole-v1", "--algo", "q_learning", "--run-dir", str(tmp_path / "r")])
    assert code == 2
    assert "needs a Discrete observation space" in capsys.readouterr().err
