"""The multi-agent environment ids fleetmind trains on, and their construction.

Each id names a factory of a PettingZoo ``ParallelEnv`` and its keyword arguments::

    register_multiagent_env("mpe2/simple_spread_v3", "mpe2.simple_spread_v3:parallel_env",
                            {"N": 3, "max_cycles": 25, "continuous_actions": False})
    env = make_multiagent_vector_env("mpe2/simple_spread_v3", num_envs=8)

Any other ParallelEnv trains too: pass ``package.module:callable`` as the env id
(the callable takes no arguments and returns the env), or register it here.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from fleetmind.core.errors import ConfigError, UnknownNameError
from fleetmind.envs.team import MultiAgentVectorEnv


@dataclass(frozen=True)
class MultiAgentEnvEntry:
    """How to build one registered multi-agent env."""

    entry_point: str | Callable[..., Any]
    """``module:callable`` (imported on first use) or the callable itself."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of the callable."""
    family: str = "pettingzoo"
    """Shown by ``fleetmind envs``."""
    package: str | None = None
    """Python package that must be installed to build it (listed only then)."""


_MPE_SPREAD = {"N": 3, "local_ratio": 0.5, "max_cycles": 25, "continuous_actions": False}

_REGISTRY: dict[str, MultiAgentEnvEntry] = {
    "mpe2/simple_spread_v3": MultiAgentEnvEntry(
        "mpe2.simple_spread_v3:parallel_env", _MPE_SPREAD, "mpe2 (cooperative)", "mpe2"
    ),
    "mpe2/simple_reference_v3": MultiAgentEnvEntry(
        "mpe2.simple_reference_v3:parallel_env",
        {"max_cycles": 25, "continuous_actions": False},
        "mpe2 (cooperative)",
        "mpe2",
    ),
    "mpe2/simple_speaker_listener_v4": MultiAgentEnvEntry(
        "mpe2.simple_speaker_listener_v4:parallel_env",
        {"max_cycles": 25, "continuous_actions": False},
        "mpe2 (cooperative, heterogeneous)",
        "mpe2",
    ),
    "fleetmind/coordination-v0": MultiAgentEnvEntry(
        "fleetmind.envs.scenarios.coordination:parallel_env", {}, "fleetmind scenario"
    ),
    "fleetmind/coordination-large-v0": MultiAgentEnvEntry(
        "fleetmind.envs.scenarios.coordination:parallel_env",
        {"agents": 4, "choices": 5, "horizon": 10},
        "fleetmind scenario",
    ),
}


def register_multiagent_env(
    env_id: str,
    entry_point: str | Callable[..., Any],
    kwargs: dict[str, Any] | None = None,
    family: str = "pettingzoo",
) -> None:
    """Make ``env_id`` trainable with a multi-agent algorithm (replaces an existing id)."""
    _REGISTRY[env_id] = MultiAgentEnvEntry(entry_point, dict(kwargs or {}), family)


def _installed(entry: MultiAgentEnvEntry) -> bool:
    return entry.package is None or importlib.util.find_spec(entry.package) is not None


def multiagent_env_ids() -> dict[str, str]:
    """Registered ids whose package is installed, id -> family."""
    return {k: v.family for k, v in sorted(_REGISTRY.items()) if _installed(v)}


def _is_entry_point(env_id: str) -> bool:
    module, sep, attr = env_id.partition(":")
    return bool(sep and module and attr.isidentifier() and "/" not in module)


def _is_traffic_id(env_id: str) -> bool:
    from fleetmind.envs.scenarios.traffic.catalog import is_traffic_env_id

    return is_traffic_env_id(env_id)


def is_multiagent_env_id(env_id: str) -> bool:
    """True for a registered multi-agent id, a traffic scenario id or a
    ``module:callable`` entry point."""
    return env_id in _REGISTRY or _is_entry_point(env_id) or _is_traffic_id(env_id)


def has_single_agent_form(env_id: str) -> bool:
    """True for multi-agent ids that single-agent algorithms also train: the traffic
    scenarios, whose agents become slots of one Gymnasium vector env (shared policy)."""
    return _is_traffic_id(env_id)


def multiagent_close_matches(env_id: str) -> list[str]:
    """Registered multi-agent ids close to ``env_id``."""
    return difflib.get_close_matches(env_id, list(_REGISTRY), n=3, cutoff=0.5)


def _load(entry_point: str | Callable[..., Any], env_id: str) -> Callable[..., Any]:
    if callable(entry_point):
        return entry_point
    module_name, _, attr = entry_point.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(
            f"environment {env_id} needs the Python module {module_name!r}, which cannot be "
            f"imported ({exc}); install it (for mpe2 ids: pip install mpe2)"
        ) from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UnknownNameError(f"{module_name} has no callable {attr!r} (from {env_id!r})")
    return factory  # type: ignore[no-any-return]


def multiagent_factory(env_id: str) -> Callable[[], Any]:
    """A no-argument callable that builds one ParallelEnv copy of ``env_id``."""
    entry = _REGISTRY.get(env_id)
    if entry is None and _is_traffic_id(env_id):
        entry = MultiAgentEnvEntry(
            "fleetmind.envs.scenarios.traffic.catalog:make_traffic_env", {"env_id": env_id}
        )
    if entry is None:
        if not _is_entry_point(env_id):
            close = multiagent_close_matches(env_id)
            hint = f" Close matches: {', '.join(close)}." if close else ""
            raise UnknownNameError(
                f"unknown multi-agent environment id {env_id!r}.{hint} "
                "Run `fleetmind envs` to list them."
            )
        entry = MultiAgentEnvEntry(env_id)
    factory = _load(entry.entry_point, env_id)
    kwargs = dict(entry.kwargs)
    return lambda: factory(**kwargs)


def make_multiagent_vector_env(env_id: str, num_envs: int) -> MultiAgentVectorEnv:
    """``num_envs`` copies of the multi-agent env ``env_id``."""
    if num_envs <= 0:
        raise ConfigError(f"number of environments must be positive, got {num_envs}")
    make = multiagent_factory(env_id)
    return MultiAgentVectorEnv([make] * num_envs, env_id)
