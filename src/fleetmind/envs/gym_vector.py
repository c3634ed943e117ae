"""Vectorised Gymnasium environments, and the Gymnasium ids fleetmind lists.

``make_gym_vector_env`` uses Gymnasium's native vectorised implementation where
the env has one (CartPole) and a synchronous vector of copies otherwise.
Observations that are not boxes (Discrete, Tuple, MultiDiscrete) are flattened to
one-hot vectors. All use Gymnasium's next-step autoreset: the step after an
episode ends returns the reset observation and ignores its action. A synchronous
vector returns its own observation buffer (no copy per step): a caller that keeps
observations across steps copies them.

Ids are Gymnasium's own (its registry, ``gymnasium.register``); this module knows
no other. Use :func:`fleetmind.envs.registry.make_vector_env` to build any id.
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
from gymnasium import spaces
from gymnasium.wrappers import FlattenObservation

from fleetmind.core.errors import ConfigError

_FAMILIES = ("classic_control", "toy_text", "box2d", "mujoco")
LISTED_FAMILIES = ("classic_control", "toy_text")
"""Families whose ids ``fleetmind envs`` lists (their spaces are all supported)."""


def _family(entry_point: object) -> str | None:
    text = entry_point if isinstance(entry_point, str) else getattr(entry_point, "__module__", "")
    for family in _FAMILIES:
        if f"envs.{family}" in str(text):
            return family
    return None


def gymnasium_family(env_id: str) -> str:
    """The family of a registered Gymnasium id (``gymnasium`` when not one of its own)."""
    return _family(gym.spec(env_id).entry_point) or "gymnasium"


def gymnasium_env_ids() -> dict[str, str]:
    """Registered Gymnasium ids of the families fleetmind lists, id -> family."""
    out: dict[str, str] = {}
    for env_id, spec in gym.registry.items():
        family = _family(spec.entry_point)
        if family in LISTED_FAMILIES:
            out[env_id] = family
    return dict(sorted(out.items()))


def _needs_flatten(space: gym.Space[Any]) -> bool:
    return not isinstance(space, spaces.Box)


def make_env(env_id: str, **kwargs: Any) -> gym.Env[Any, Any]:
    """One environment, with non-box observations flattened."""
    env = gym.make(env_id, **kwargs)
    if _needs_flatten(env.observation_space):
        env = FlattenObservation(env)
    return env


def make_gym_vector_env(env_id: str, num_envs: int) -> gym.vector.VectorEnv[Any, Any, Any]:
    """``num_envs`` copies of the Gymnasium env ``env_id`` behind its vector API."""
    if num_envs <= 0:
        raise ConfigError(f"number of environments must be positive, got {num_envs}")
    spec = gym.spec(env_id)
    if spec.vector_entry_point is not None:
        return gym.make_vec(env_id, num_envs=num_envs, vectorization_mode="vector_entry_point")
    # copy=False: step() returns the vector's own observation buffer instead of a deep
    # copy of it, which it overwrites on the next step (GymTeamEnv copies what it keeps).
    return gym.vector.SyncVectorEnv([lambda: make_env(env_id) for _ in range(num_envs)], copy=False)
