"""Value and policy iteration against independently computed optima."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest

from fleetmind.algos.tabular.planning import PlanningConfig, policy_iteration, value_iteration
from fleetmind.cli.main import main
from fleetmind.core.errors import ConfigError, InvalidInputError
from fleetmind.envs.finite_mdp import from_gymnasium, from_json_dict, random_mdp

CASES = [
    ("FrozenLake-v1", 0.99),
    ("FrozenLake8x8-v1", 0.95),
    ("Taxi-v4", 0.9),
    ("CliffWalking-v1", 1.0),
    ("CliffWalking-v1", 0.9),
]


def dense_model(env_id: str) -> tuple[np.ndarray, np.ndarray]:
    """P[a, s, s'] (continuation only) and R[s, a], read straight from env.unwrapped.P."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        env = gym.make(env_id)
    table, n_s, n_a = env.unwrapped.P, env.observation_space.n, env.action_space.n
    env.close()
    p = np.zeros((n_a, n_s, n_s))
    r = np.zeros((n_s, n_a))
    for s in range(n_s):
        for a in range(n_a):
            for prob, nxt, reward, done in table[s][a]:
                r[s, a] += prob * reward
                if not done:
                    p[a, s, nxt] += prob
    return p, r


def exact_values(p: np.ndarray, r: np.ndarray, policy: np.ndarray, gamma: float) -> np.ndarray:
    states = np.arange(r.shape[0])
    p_pi = p[policy, states, :]
    return np.linalg.solve(np.eye(len(states)) - gamma * p_pi, r[states, policy])


@pytest.mark.parametrize(("env_id", "gamma"), CASES)
def test_value_iteration_matches_exact_optimum(env_id: str, gamma: float) -> None:
    result = value_iteration(from_gymnasium(env_id), PlanningConfig(gamma=gamma, tol=1e-10))
    p, r = dense_model(env_id)
    reference = exact_values(p, r, result.policy, gamma)
    # The reference is optimal: no action improves on it anywhere (Bellman optimality).
    q_ref = r + gamma * np.einsum("asn,n->sa", p, reference)
    assert np.max(q_ref.max(axis=1) - reference) < 1e-8
    np.testing.assert_allclose(result.values, reference, atol=1e-3)
    assert result.converged
    assert result.residual < 1e-10


@pytest.mark.parametrize(("env_id", "gamma"), [c for c in CASES if c[1] < 1])
def test_policy_iteration_agrees_with_value_iteration(env_id: str, gamma: float) -> None:
    mdp = from_gymnasium(env_id)
    vi = value_iteration(mdp, PlanningConfig(gamma=gamma, tol=1e-10))
    pi = policy_iteration(mdp, PlanningConfig(gamma=gamma))
    np.testing.assert_allclose(pi.values, vi.values, atol=1e-6)
    assert pi.converged


def test_published_optima() -> None:
    cliff = value_iteration(from_gymnasium("CliffWalking-v1"), PlanningConfig(gamma=1.0))
    assert cliff.values[36] == pytest.approx(-13.0, abs=1e-9)  # 13 steps around the cliff
    lake = value_iteration(from_gymnasium("FrozenLake-v1"), PlanningConfig(gamma=0.99))
    assert lake.values[0] == pytest.approx(0.542, abs=1e-3)


def test_iteration_cap_reports_unconverged() -> None:
    result = value_iteration(
        from_gymnasium("FrozenLake-v1"), PlanningConfig(gamma=0.99, max_iterations=3)
    )
    assert result.iterations == 3
    assert not result.converged
    assert result.residual > 1e-3


def test_random_mdp_methods_agree() -> None:
    mdp = random_mdp(200, 4, branching=5, seed=1)
    vi = value_iteration(mdp, PlanningConfig(gamma=0.9, tol=1e-10))
    pi = policy_iteration(mdp, PlanningConfig(gamma=0.9))
    np.testing.assert_allclose(vi.values, pi.values, atol=1e-6)


TWO_STATE = {
    "num_states": 2,
    "num_actions": 2,
    "transitions": [
        [
            [{"prob": 1.0, "next_state": 0, "reward": 0.0}],
            [{"prob": 1.0, "next_state": 1, "reward": 1.0}],
        ],
        [
            [{"prob": 1.0, "next_state": 1, "reward": 2.0, "terminal": True}],
            [
                {"prob": 0.5, "next_state": 0, "reward": 0.0},
                {"prob": 0.5, "next_state": 1, "reward": 0.0},
            ],
        ],
    ],
}


def test_json_mdp_solves_by_hand() -> None:
    result = value_iteration(from_json_dict(TWO_STATE), PlanningConfig(gamma=0.5))
    # State 1: take action 0 for 2 and stop. State 0: move for 1, then 0.5 * 2.
    np.testing.assert_allclose(result.values, [2.0, 2.0], atol=1e-8)
    assert result.policy.tolist() == [1, 0]


def _broken(path: list[int | str], value: object) -> dict[str, object]:
    data = json.loads(json.dumps(TWO_STATE))
    node = data
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return data


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            _broken(["transitions", 1, 0, 0, "next_state"], 7),
            r"transitions\[1\]\[0\]\[0\]\.next_state",
        ),
        (_broken(["transitions", 0, 1, 0, "prob"], 0.7), r"state 0 action 1 sum to 0\.7"),
        (_broken(["transitions", 1, 1, 0, "prob"], -0.5), r"transitions\[1\]\[1\]\[0\]\.prob"),
        (_broken(["transitions", 1, 1], []), r"action 1 of state 1 has no outcomes"),
        (_broken(["transitions", 1], [[]]), r"transitions\[1\] must be a list of 2 actions"),
        (_broken(["num_states"], 3), r"list of 3 states"),
        (_broken(["transitions", 0, 0, 0, "reward"], "x"), r"transitions\[0\]\[0\]\[0\]\.reward"),
        ({"num_states": 2}, r"required field 'num_actions'"),
    ],
)
def test_malformed_json_names_field_and_state(data: object, message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        from_json_dict(data)


def test_gamma_out_of_range() -> None:
    with pytest.raises(ConfigError, match=r"gamma must be in \[0, 1\]"):
        value_iteration(random_mdp(3, 2, 2), PlanningConfig(gamma=-0.1))


def test_cli_json_output(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "mdp.json"
    path.write_text(json.dumps(TWO_STATE))
    assert main(["solve-mdp", str(path), "--gamma", "0.5", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["policy"] == [1, 0]
    assert out["values"] == pytest.approx([2.0, 2.0])
    assert out["iterations"] >= 1
    assert out["residual"] < 1e-8


def test_cli_policy_iteration_on_env(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["solve-mdp", "Taxi-v4", "--method", "policy", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out["values"]) == 500


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["solve-mdp", "CartPole-v1"], "has no transition model"),
        (["solve-mdp", "FrozenLake-v1", "--gamma", "1.5"], r"gamma must be in \[0, 1\]"),
        (["solve-mdp", "FrozenLake-v1", "--gamma", "abc"], "gamma"),
        (["solve-mdp", "NoSuchEnv-v0"], "unknown environment id"),
        (["solve-mdp", "missing.json"], "does not exist"),
    ],
)
def test_cli_bad_input(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err or __import__("re").search(message, err)
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_cli_malformed_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.json"
    path.write_text("{not json")
    assert main(["solve-mdp", str(path)]) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_padded_and_scattered_sweeps_agree() -> None:
    mdp = random_mdp(50, 3, branching=4, seed=2)
    values = np.random.default_rng(0).standard_normal(50)
    padded = mdp.expected_next_values(values)
    object.__setattr__(mdp, "_padded", None)
    np.testing.assert_allclose(mdp.expected_next_values(values), padded, atol=1e-12)
