"""Vectorised Gymnasium environments and their space descriptions.

``make_vector_env`` uses Gymnasium's native vectorised implementation where the env
has one (CartPole) and a synchronous vector of copies otherwise. Observations that
are not boxes (Discrete, Tuple, MultiDiscrete) are flattened to one-hot vectors.
All use Gymnasium's next-step autoreset: the step after an episode ends returns the
reset observation and ignores its action.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from gymnasium.wrappers import FlattenObservation

from fleetmind.core.errors import ConfigError
from fleetmind.core.spaces import SpaceSpec
from fleetmind.envs.registry import resolve_env_id


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


def _needs_flatten(space: gym.Space[Any]) -> bool:
    return not isinstance(space, spaces.Box)


def make_env(env_id: str, **kwargs: Any) -> gym.Env[Any, Any]:
    """One environment, with non-box observations flattened."""
    env = gym.make(resolve_env_id(env_id), **kwargs)
    if _needs_flatten(env.observation_space):
        env = FlattenObservation(env)
    return env


def make_vector_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv[Any, Any, Any]:
    """``num_envs`` copies of ``env_id`` behind Gymnasium's vector API."""
    if num_envs <= 0:
        raise ConfigError(f"number of environments must be positive, got {num_envs}")
    env_id = resolve_env_id(env_id)
    scenario = _scenario_vector_env(env_id, num_envs)
    if scenario is not None:
        return scenario
    spec = gym.spec(env_id)
    if spec.vector_entry_point is not None:
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    return gym.vector.SyncVectorEnv([lambda: make_env(env_id) for _ in range(num_envs)])


def _scenario_vector_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv[Any, Any, Any] | None:
    """fleetmind's multi-agent scenarios: one vector slot per agent of each copy."""
    from fleetmind.envs.scenarios.traffic.catalog import is_traffic_env_id

    if not is_traffic_env_id(env_id):
        return None
    from fleetmind.envs.scenarios.traffic.agents_vector import make_agents_vector_env

    return make_agents_vector_env(env_id, num_envs)


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
