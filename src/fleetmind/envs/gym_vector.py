"""Vectorised Gymnasium environments.

``make_vector_env`` uses Gymnasium's native vectorised implementation where the env
has one (CartPole) and a synchronous vector of copies otherwise. Observations that
are not boxes (Discrete, Tuple, MultiDiscrete) are flattened to one-hot vectors.
All use Gymnasium's next-step autoreset: the step after an episode ends returns the
reset observation and ignores its action.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium import spaces
from gymnasium.wrappers import FlattenObservation

from fleetmind.core.errors import ConfigError
from fleetmind.envs.registry import resolve_env_id


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
