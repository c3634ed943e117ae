"""Experience replay for value-based learners, with n-step returns and optional priorities.

The buffer keeps whole trajectory chunks in time-major rows ``[N, E]`` (one row
per vector-env step, one column per env), exactly as :class:`Trajectory` brings
them. The next observation of step ``(i, e)`` is simply ``obs[i + 1, e]``, so
each observation is stored once and chunk boundaries need no special care::

    row i     obs  action  reward  terminated  truncated  valid
    row i+1   obs' ...                                           <- next_obs of row i

With Gymnasium's next-step autoreset, the row after an episode ends holds the
final observation (the bootstrap target on truncation) and ``valid=False``; it
is never sampled as a transition itself. An n-step return sums rewards until
the episode ends (terminated: no bootstrap; truncated: bootstrap from the final
observation) or the newest row is reached.

Prioritised replay (Schaul et al., 2016) samples step ``j`` with probability
``p_j^alpha / sum p^alpha`` and weights its loss by ``(N * P(j))^-beta / max``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from fleetmind.core.batch import Trajectory

_ARRAYS = ("obs", "actions", "rewards", "terminated", "ended", "valid")


@dataclass
class SampledBatch:
    """``B`` n-step transitions drawn from the buffer."""

    obs: np.ndarray
    """Observations, ``[B, *obs]``."""
    actions: np.ndarray
    """Actions taken, ``int64 [B]``."""
    returns: np.ndarray
    """Discounted n-step reward sums, ``float32 [B]``."""
    next_obs: np.ndarray
    """Observations to bootstrap from, ``[B, *obs]``."""
    discounts: np.ndarray
    """``gamma^k`` for the bootstrap term, 0 where the episode terminated, ``float32 [B]``."""
    weights: np.ndarray
    """Importance weights (all ones without priorities), ``float32 [B]``."""
    indices: np.ndarray
    """Flat slots ``row * E + env``, for :meth:`ReplayBuffer.update_priorities`."""


class ReplayBuffer:
    """A ring buffer of ``capacity_rows`` vector-env steps of ``num_envs`` envs."""

    def __init__(
        self,
        capacity: int,
        num_envs: int,
        obs_shape: tuple[int, ...],
        obs_dtype: np.dtype[np.generic] | type = np.float32,
        prioritized_alpha: float | None = None,
    ) -> None:
        self.num_envs = num_envs
        self.rows = max(2, -(-capacity // num_envs))
        self.obs = np.zeros((self.rows, num_envs, *obs_shape), dtype=obs_dtype)
        self.actions = np.zeros((self.rows, num_envs), dtype=np.int64)
        self.rewards = np.zeros((self.rows, num_envs), dtype=np.float32)
        self.terminated = np.zeros((self.rows, num_envs), dtype=bool)
        self.ended = np.zeros((self.rows, num_envs), dtype=bool)
        self.valid = np.zeros((self.rows, num_envs), dtype=bool)
        self.next_row = 0
        self.filled_rows = 0
        self.alpha = prioritized_alpha
        self.priorities = (
            np.zeros(self.rows * num_envs, dtype=np.float64) if prioritized_alpha else None
        )
        self.max_priority = 1.0

    def __len__(self) -> int:
        """Number of stored steps that can be sampled (valid and followed by a row)."""
        if self.filled_rows < 2:
            return 0
        return int(self.valid[: self.filled_rows].sum() - self.valid[self.newest].sum())

    @property
    def newest(self) -> int:
        """Index of the most recently written row."""
        return (self.next_row - 1) % self.rows

    def add(self, trajectory: Trajectory) -> None:
        """Append the ``T`` rows of a trajectory chunk."""
        t = trajectory.num_steps
        rows = (self.next_row + np.arange(t)) % self.rows
        self.obs[rows] = trajectory.obs
        self.actions[rows] = trajectory.actions.reshape(t, self.num_envs)
        self.rewards[rows] = trajectory.rewards
        self.terminated[rows] = trajectory.terminated
        self.ended[rows] = trajectory.terminated | trajectory.truncated
        self.valid[rows] = trajectory.valid
        if self.priorities is not None:
            slots = (rows[:, None] * self.num_envs + np.arange(self.num_envs)).reshape(-1)
            self.priorities[slots] = np.where(trajectory.valid.reshape(-1), self.max_priority, 0)
        self.next_row = int((self.next_row + t) % self.rows)
        self.filled_rows = min(self.rows, self.filled_rows + t)

    def sample(
        self, batch_size: int, rng: np.random.Generator, n_step: int, gamma: float, beta: float
    ) -> SampledBatch:
        """Draw ``batch_size`` n-step transitions (the buffer must not be empty)."""
        rows, envs, weights = self._draw(batch_size, rng, beta)
        returns = np.zeros(batch_size, dtype=np.float64)
        scale = np.ones(batch_size, dtype=np.float64)
        alive = np.ones(batch_size, dtype=bool)
        terminal = np.zeros(batch_size, dtype=bool)
        boot = rows.copy()
        for k in range(n_step):
            row = (rows + k) % self.rows
            returns += np.where(alive, scale * self.rewards[row, envs], 0.0)
            scale = np.where(alive, scale * gamma, scale)
            boot = np.where(alive, (row + 1) % self.rows, boot)
            terminal |= alive & self.terminated[row, envs]
            alive &= ~self.ended[row, envs] & ((row + 1) % self.rows != self.newest)
        discounts = np.where(terminal, 0.0, scale)
        return SampledBatch(
            obs=self.obs[rows, envs],
            actions=self.actions[rows, envs],
            returns=returns.astype(np.float32),
            next_obs=self.obs[boot, envs],
            discounts=discounts.astype(np.float32),
            weights=weights,
            indices=rows * self.num_envs + envs,
        )

    def _draw(
        self, batch_size: int, rng: np.random.Generator, beta: float
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.priorities is not None and self.alpha is not None:
            return self._draw_prioritized(self.priorities, self.alpha, batch_size, rng, beta)
        rows_list: list[np.ndarray] = []
        envs_list: list[np.ndarray] = []
        have = 0
        for _ in range(100):  # rejection of invalid and newest rows; bounded
            rows = rng.integers(0, self.filled_rows, size=2 * batch_size)
            envs = rng.integers(0, self.num_envs, size=2 * batch_size)
            keep = self.valid[rows, envs] & (rows != self.newest)
            rows_list.append(rows[keep])
            envs_list.append(envs[keep])
            have += int(keep.sum())
            if have >= batch_size:
                break
        else:
            raise RuntimeError("replay buffer has no sampleable transitions")
        rows = np.concatenate(rows_list)[:batch_size]
        envs = np.concatenate(envs_list)[:batch_size]
        return rows, envs, np.ones(batch_size, dtype=np.float32)

    def _draw_prioritized(
        self,
        priorities: np.ndarray,
        alpha: float,
        batch_size: int,
        rng: np.random.Generator,
        beta: float,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        scaled = priorities**alpha
        newest = slice(self.newest * self.num_envs, (self.newest + 1) * self.num_envs)
        scaled[newest] = 0.0
        cumulative = np.cumsum(scaled)
        total = cumulative[-1]
        points = (np.arange(batch_size) + rng.random(batch_size)) * (total / batch_size)
        slots = np.minimum(np.searchsorted(cumulative, points, side="right"), len(scaled) - 1)
        probs = scaled[slots] / total
        count = max(len(self), 1)
        weights = (count * probs) ** (-beta)
        weights /= weights.max()
        return slots // self.num_envs, slots % self.num_envs, weights.astype(np.float32)

    def state(self) -> dict[str, np.ndarray | int | float]:
        """The buffer's contents and cursors, for checkpoints."""
        state: dict[str, np.ndarray | int | float] = {name: getattr(self, name) for name in _ARRAYS}
        state.update(
            next_row=self.next_row, filled_rows=self.filled_rows, max_priority=self.max_priority
        )
        if self.priorities is not None:
            state["priorities"] = self.priorities
        return state

    def load_state(self, state: dict[str, np.ndarray | int | float]) -> None:
        """Restore what :meth:`state` returned (same capacity and number of envs)."""
        for name in _ARRAYS:
            getattr(self, name)[...] = state[name]
        self.next_row = int(state["next_row"])
        self.filled_rows = int(state["filled_rows"])
        self.max_priority = float(state["max_priority"])
        if self.priorities is not None and "priorities" in state:
            self.priorities[...] = state["priorities"]

    def update_priorities(self, indices: np.ndarray, td_errors: np.ndarray) -> None:
        """Set the priorities of sampled slots to ``|td_error| + eps``."""
        if self.priorities is None:
            return
        new = np.abs(td_errors).astype(np.float64) + 1e-6
        self.priorities[indices] = new
        self.max_priority = max(self.max_priority, float(new.max()))
