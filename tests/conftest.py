"""Shared test fixtures: tiny deterministic environments registered with Gymnasium."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
from gymnasium import spaces


class CountdownEnv(gym.Env[np.ndarray, int]):
    """Observation is the steps left; reward 1 per step; terminates after ``length`` steps."""

    def __init__(self, length: int = 3, nan_at: int | None = None) -> None:
        self.length = length
        self.nan_at = nan_at
        self.observation_space = spaces.Box(-100.0, 100.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.t = 0
        return np.array([self.length], dtype=np.float32), {}

    def step(self, action: int) -> Any:
        self.t += 1
        obs = np.array([self.length - self.t], dtype=np.float32)
        if self.nan_at is not None and self.t >= self.nan_at:
            obs[:] = np.nan
        return obs, 1.0, self.t >= self.length, False, {}


class DriftEnv(gym.Env[np.ndarray, int]):
    """Observation that creeps within an episode of ``length`` steps and lands far off at
    its last one (a cart drifting off the track)."""

    def __init__(self, length: int = 40) -> None:
        self.length = length
        self.observation_space = spaces.Box(-100.0, 100.0, (1,), np.float32)
        self.action_space = spaces.Discrete(2)
        self.t = 0

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None) -> Any:
        super().reset(seed=seed)
        self.t = 0
        return np.zeros(1, dtype=np.float32), {}

    def step(self, action: int) -> Any:
        self.t += 1
        done = self.t >= self.length
        obs = np.array([10.0 if done else 0.01 * self.t], dtype=np.float32)
        return obs, 1.0, done, False, {}


gym.register("fleetmind-test/Countdown-v0", entry_point=CountdownEnv)
gym.register("fleetmind-test/Drift-v0", entry_point=DriftEnv)
gym.register(  # an observation that drifts slowly and jumps at each reset
    "fleetmind-test/LongCountdown-v0", entry_point=CountdownEnv, kwargs={"length": 100}
)
gym.register(
    "fleetmind-test/NaNObs-v0",
    entry_point=CountdownEnv,
    kwargs={"length": 50, "nan_at": 5},
    disable_env_checker=True,
)


@pytest.fixture
def run_dir(tmp_path: Any) -> Any:
    """A path for a run directory that does not exist yet."""
    return tmp_path / "run"


@pytest.fixture
def register_env() -> Iterator[Callable[[Any], None]]:
    """Registers env entries with fleetmind's registry for one test, removing them after."""
    from fleetmind.envs import registry

    added: list[str] = []

    def register(entry: Any) -> None:
        registry.register_env(entry)
        added.append(entry.env_id)

    yield register
    for env_id in added:
        registry.unregister_env(env_id)
