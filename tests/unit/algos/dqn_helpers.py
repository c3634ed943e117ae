"""Tiny collection loop for DQN tests: a Gymnasium vector env with next-step autoreset."""

from __future__ import annotations

import gymnasium as gym
import numpy as np

from fleetmind.core.batch import Trajectory


def make_trajectory(
    *,
    obs: list[list[float]],
    rewards: list[float],
    terminated: list[bool],
    truncated: list[bool],
    valid: list[bool],
    actions: list[int] | None = None,
) -> Trajectory:
    """A one-env trajectory ``[T, 1]`` whose observations are ``[T, 1, len(obs[0])]``."""
    t = len(rewards)
    z = np.zeros((t, 1), dtype=np.float32)
    return Trajectory(
        obs=np.asarray(obs, dtype=np.float32).reshape(t, 1, -1),
        actions=np.asarray(actions or [0] * t, dtype=np.int64).reshape(t, 1),
        log_probs=z,
        values=z,
        rewards=np.asarray(rewards, dtype=np.float32).reshape(t, 1),
        terminated=np.asarray(terminated).reshape(t, 1),
        truncated=np.asarray(truncated).reshape(t, 1),
        valid=np.asarray(valid).reshape(t, 1),
        next_values=z,
    )


class Collector:
    """Steps a vector env with a rollout policy and yields ``[T, E]`` trajectories."""

    def __init__(self, env: gym.vector.VectorEnv, seed: int) -> None:
        self.env = env
        obs, _ = env.reset(seed=seed)
        self.obs = np.asarray(obs, dtype=np.float32)
        self.ended = np.zeros(env.num_envs, dtype=bool)
        self.episode_return = np.zeros(env.num_envs)
        self.returns: list[float] = []

    def collect(self, policy: object, steps: int) -> Trajectory:
        cols: dict[str, list[np.ndarray]] = {k: [] for k in ("o", "a", "r", "te", "tr", "v")}
        for _ in range(steps):
            out = policy.step(self.obs)  # type: ignore[attr-defined]
            obs, reward, term, trunc, _ = self.env.step(out.actions)
            valid = ~self.ended
            for key, value in zip(
                cols, (self.obs, out.actions, reward, term, trunc, valid), strict=True
            ):
                cols[key].append(np.asarray(value))
            self.episode_return += np.where(valid, reward, 0.0)
            self.ended = term | trunc
            for i in np.flatnonzero(self.ended):
                self.returns.append(float(self.episode_return[i]))
                self.episode_return[i] = 0.0
            self.obs = np.asarray(obs, dtype=np.float32)
        z = np.zeros((steps, self.env.num_envs), dtype=np.float32)
        return Trajectory(
            obs=np.stack(cols["o"]).astype(np.float32),
            actions=np.stack(cols["a"]),
            log_probs=z,
            values=z,
            rewards=np.stack(cols["r"]).astype(np.float32),
            terminated=np.stack(cols["te"]),
            truncated=np.stack(cols["tr"]),
            valid=np.stack(cols["v"]),
            next_values=z,
        )
