"""n-step returns, autoreset rows and priorities of the replay buffer."""

from __future__ import annotations

import numpy as np
from tests.unit.algos.dqn_helpers import make_trajectory

from fleetmind.algos.dqn.replay import ReplayBuffer

# One env, two chunks. Episode A: obs 0, 1, 2 then terminates (row 3 holds the final
# obs 3 and is an autoreset row). Episode B: obs 10 truncated (row 5 holds the final
# obs 11). Episode C: obs 20, and obs 21 is the newest row.
CHUNK_1 = make_trajectory(
    obs=[[0], [1], [2], [3]],
    rewards=[1, 2, 3, 0],
    terminated=[False, False, True, False],
    truncated=[False, False, False, False],
    valid=[True, True, True, False],
)
CHUNK_2 = make_trajectory(
    obs=[[10], [11], [20], [21]],
    rewards=[5, 0, 7, 9],
    terminated=[False, False, False, False],
    truncated=[True, False, False, False],
    valid=[True, False, True, True],
)


def _draw(
    buffer: ReplayBuffer, n_step: int, gamma: float
) -> dict[float, tuple[float, float, float]]:
    batch = buffer.sample(512, np.random.default_rng(0), n_step, gamma, beta=1.0)
    seen: dict[float, tuple[float, float, float]] = {}
    for o, ret, nxt, disc in zip(
        batch.obs[:, 0], batch.returns, batch.next_obs[:, 0], batch.discounts, strict=True
    ):
        seen[float(o)] = (float(ret), float(nxt), float(disc))
    return seen


def test_one_step_transitions_across_chunks_and_autoreset() -> None:
    buffer = ReplayBuffer(100, 1, (1,))
    buffer.add(CHUNK_1)
    buffer.add(CHUNK_2)
    seen = _draw(buffer, n_step=1, gamma=0.5)
    # Autoreset rows (obs 3, 11) and the newest row (obs 21) are never sampled.
    assert set(seen) == {0.0, 1.0, 2.0, 10.0, 20.0}
    assert seen[2.0] == (3.0, 3.0, 0.0)  # terminated: no bootstrap
    assert seen[10.0] == (5.0, 11.0, 0.5)  # truncated: bootstrap from the final obs
    assert seen[0.0] == (1.0, 1.0, 0.5)
    assert len(buffer) == 5


def test_n_step_returns_stop_at_episode_end() -> None:
    buffer = ReplayBuffer(100, 1, (1,))
    buffer.add(CHUNK_1)
    buffer.add(CHUNK_2)
    seen = _draw(buffer, n_step=3, gamma=0.5)
    assert seen[0.0] == (1 + 0.5 * 2 + 0.25 * 3, 3.0, 0.0)
    assert seen[1.0] == (2 + 0.5 * 3, 3.0, 0.0)
    assert seen[10.0] == (5.0, 11.0, 0.5)
    assert seen[20.0] == (7.0, 21.0, 0.5)  # cut at the newest row


def test_ring_buffer_wraps() -> None:
    buffer = ReplayBuffer(6, 1, (1,))
    buffer.add(CHUNK_1)
    buffer.add(CHUNK_2)  # capacity 6 rows: obs 0 and 1 are overwritten
    seen = _draw(buffer, n_step=1, gamma=0.5)
    assert set(seen) == {2.0, 10.0, 20.0}


def test_prioritized_prefers_high_td_error() -> None:
    buffer = ReplayBuffer(100, 1, (1,), prioritized_alpha=1.0)
    buffer.add(CHUNK_1)
    buffer.add(CHUNK_2)
    batch = buffer.sample(64, np.random.default_rng(0), 1, 0.9, beta=1.0)
    errors = np.where(batch.obs[:, 0] == 20.0, 100.0, 0.0)
    buffer.update_priorities(batch.indices, errors)
    batch = buffer.sample(256, np.random.default_rng(1), 1, 0.9, beta=1.0)
    assert np.mean(batch.obs[:, 0] == 20.0) > 0.9
    assert batch.weights.max() == 1.0
    assert set(np.unique(batch.obs[:, 0])) <= {0.0, 1.0, 2.0, 10.0, 20.0}


def test_state_round_trip() -> None:
    buffer = ReplayBuffer(100, 1, (1,))
    buffer.add(CHUNK_1)
    other = ReplayBuffer(100, 1, (1,))
    other.load_state(buffer.state())
    other.add(CHUNK_2)
    assert len(other) == 5
