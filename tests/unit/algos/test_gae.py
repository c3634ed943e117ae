import numpy as np
import pytest

from fleetmind.algos.ppo.learner import compute_gae


def _col(values: list[float]) -> np.ndarray:
    return np.asarray(values, dtype=np.float32)[:, None]


def test_hand_computed_two_steps() -> None:
    # gamma 0.5, lambda 0.5; values 1, 2; next values 2, 4; rewards 1, 1; no ends.
    adv, ret = compute_gae(
        _col([1, 1]),
        _col([1, 2]),
        _col([2, 4]),
        _col([0, 0]).astype(bool),
        _col([0, 0]).astype(bool),
        0.5,
        0.5,
    )
    # delta1 = 1 + 0.5*4 - 2 = 1; delta0 = 1 + 0.5*2 - 1 = 1; A0 = 1 + 0.25*1 = 1.25
    assert adv[:, 0] == pytest.approx([1.25, 1.0])
    assert ret[:, 0] == pytest.approx([2.25, 3.0])


def test_terminal_does_not_bootstrap_and_stops_recursion() -> None:
    adv, _ = compute_gae(
        _col([1, 5]),
        _col([0, 0]),
        _col([10, 10]),
        _col([1, 0]).astype(bool),
        _col([0, 0]).astype(bool),
        0.9,
        1.0,
    )
    assert adv[0, 0] == pytest.approx(1.0)  # terminal: no 0.9*10, no A1
    assert adv[1, 0] == pytest.approx(5 + 9.0)


def test_truncation_bootstraps_but_stops_recursion() -> None:
    adv, _ = compute_gae(
        _col([1, 5]),
        _col([0, 0]),
        _col([10, 10]),
        _col([0, 0]).astype(bool),
        _col([1, 0]).astype(bool),
        0.9,
        1.0,
    )
    assert adv[0, 0] == pytest.approx(1.0 + 9.0)  # bootstraps from the final observation
    assert adv[1, 0] == pytest.approx(5 + 9.0)


def test_lambda_one_gives_discounted_returns() -> None:
    rewards = _col([1, 2, 3])
    zeros = np.zeros_like(rewards)
    term = _col([0, 0, 1]).astype(bool)
    _, ret = compute_gae(rewards, zeros, zeros, term, np.zeros_like(term), 0.5, 1.0)
    assert ret[:, 0] == pytest.approx([1 + 0.5 * 2 + 0.25 * 3, 2 + 0.5 * 3, 3])
