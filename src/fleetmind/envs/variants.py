"""Variants of an environment: the same id with some physical constants changed.

Sites of a federation see different worlds (a longer pole, a heavier cart); a
variant is the env of an id with the float constants named in ``params`` set on
every copy, before the first reset::

    env = make_gym_vector_env("CartPole-v1", 8)
    apply_params(env, {"length": 0.7, "masscart": 1.5})

A parameter is a float attribute the unwrapped env already has; naming any other
is a ConfigError that lists the ones it has. Constants that others are derived
from in the env's constructor (CartPole's ``total_mass``, ``polemass_length``) are
recomputed; the derived ones cannot be set themselves.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import gymnasium as gym

from fleetmind.core.errors import ConfigError

_DERIVED: dict[str, Callable[[Any], float]] = {
    "total_mass": lambda env: float(env.masspole + env.masscart),
    "polemass_length": lambda env: float(env.masspole * env.length),
}
"""Constants an env computes from others when it is built (CartPole's)."""


def _targets(env: gym.vector.VectorEnv[Any, Any, Any]) -> list[Any]:
    """The objects that hold the constants: a native vector env itself, or each copy."""
    envs = getattr(env, "envs", None)
    if envs is None:
        return [env.unwrapped]
    return [copy.unwrapped for copy in envs]


def env_params(target: Any) -> dict[str, float]:
    """The float constants of ``target`` that a variant may set."""
    return {
        name: value
        for name, value in vars(target).items()
        if isinstance(value, float) and not name.startswith("_") and name not in _DERIVED
    }


def check_params(env_id: str, target: Any, params: Mapping[str, Any]) -> None:
    """ConfigError naming the first parameter ``target`` lacks or a non-numeric value."""
    known = env_params(target)
    for name, value in params.items():
        if name not in known:
            raise ConfigError(
                f"{env_id} has no parameter {name!r}; it has: {', '.join(sorted(known))}"
            )
        if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
            raise ConfigError(f"{env_id} parameter {name} must be a positive number, got {value!r}")


def apply_params(
    env: gym.vector.VectorEnv[Any, Any, Any], env_id: str, params: Mapping[str, Any]
) -> None:
    """Set ``params`` on every copy of ``env`` and recompute the derived constants."""
    for target in _targets(env):
        set_params(target, env_id, params)


def set_params(target: Any, env_id: str, params: Mapping[str, Any]) -> None:
    """Set ``params`` on one unwrapped env (or a native vector env) and recompute the
    derived constants."""
    check_params(env_id, target, params)
    for name, value in params.items():
        setattr(target, name, float(value))
    for name, derive in _DERIVED.items():
        if hasattr(target, name):
            setattr(target, name, derive(target))
