"""Gymnasium spaces described as fleetmind's :class:`SpaceSpec`.

Every adapter of ``fleetmind.envs`` (the Gymnasium vector envs, the team vector
env) describes its spaces with these, and the trainers read only the
descriptions::

    obs, act = vector_spaces(make_vector_env("CartPole-v1", 8))
    obs.kind, obs.shape, act.n        # "box", (4,), 2
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from fleetmind.core.errors import ConfigError
from fleetmind.core.spaces import SpaceSpec


def space_spec(space: gym.Space[Any]) -> SpaceSpec:
    """Describe a Gymnasium space; ConfigError for kinds fleetmind does not handle."""
    if isinstance(space, spaces.Discrete):
        return SpaceSpec("discrete", (), str(space.dtype), n=int(space.n))
    if isinstance(space, spaces.MultiDiscrete):
        return SpaceSpec(
            "multi_discrete",
            tuple(space.shape),
            str(space.dtype),
            nvec=tuple(int(v) for v in space.nvec.reshape(-1)),
        )
    if isinstance(space, spaces.Box):
        return SpaceSpec(
            "box",
            tuple(space.shape),
            str(space.dtype),
            low=tuple(float(v) for v in space.low.reshape(-1)),
            high=tuple(float(v) for v in space.high.reshape(-1)),
        )
    raise ConfigError(
        f"unsupported space {space}; fleetmind handles Discrete, MultiDiscrete and Box"
    )


def vector_spaces(env: gym.vector.VectorEnv[Any, Any, Any]) -> tuple[SpaceSpec, SpaceSpec]:
    """``(observation, action)`` specs of one copy of a vector env."""
    obs = space_spec(env.single_observation_space)
    act = space_spec(env.single_action_space)
    if obs.kind != "box":
        raise ConfigError(f"observation space {obs.kind} was not flattened to a box")
    return obs, act


def observation_is_normalisable(space: SpaceSpec) -> bool:
    """True for box observations that are not already one-hot or bounded to [0, 1]."""
    if space.kind != "box" or space.low is None or space.high is None:
        return False
    return not (np.all(np.asarray(space.low) == 0.0) and np.all(np.asarray(space.high) == 1.0))
