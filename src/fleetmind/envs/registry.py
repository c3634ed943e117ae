"""The environments fleetmind can train on, and their construction.

Gymnasium ids are resolved through Gymnasium's own registry; ``trainable_env_ids``
lists the ones whose spaces fleetmind supports (every classic-control and
toy-text id at least). Unknown ids raise :class:`UnknownNameError` with close
matches.
"""

from __future__ import annotations

import difflib

import gymnasium as gym

from fleetmind.core.errors import UnknownNameError

_FAMILIES = ("classic_control", "toy_text", "box2d", "mujoco")


def _family(entry_point: object) -> str | None:
    text = entry_point if isinstance(entry_point, str) else getattr(entry_point, "__module__", "")
    for family in _FAMILIES:
        if f"envs.{family}" in str(text):
            return family
    return None


def gymnasium_env_ids() -> dict[str, str]:
    """Registered Gymnasium ids of the families fleetmind trains on, id -> family."""
    out: dict[str, str] = {}
    for env_id, spec in gym.registry.items():
        family = _family(spec.entry_point)
        if family in ("classic_control", "toy_text"):
            out[env_id] = family
    return dict(sorted(out.items()))


def scenario_env_ids() -> dict[str, str]:
    """fleetmind's own multi-agent scenarios, id -> family."""
    from fleetmind.envs.scenarios.traffic.catalog import traffic_env_ids

    return traffic_env_ids()


def trainable_env_ids() -> dict[str, str]:
    """Every id ``fleetmind train`` accepts, id -> family."""
    return {**gymnasium_env_ids(), **scenario_env_ids(), **_multiagent_ids()}


# --- multi-agent (PettingZoo) ids: see fleetmind.envs.multiagent_registry -------------
# Imported lazily: that module imports fleetmind.envs.gym_vector, which imports this one.


def _multiagent_ids() -> dict[str, str]:
    from fleetmind.envs.multiagent_registry import multiagent_env_ids

    return multiagent_env_ids()


def is_multiagent_env_id(env_id: str) -> bool:
    """True for an id that names a PettingZoo parallel env (``fleetmind envs`` lists them)."""
    from fleetmind.envs.multiagent_registry import is_multiagent_env_id as check

    return check(env_id)


def resolve_env_id(env_id: str) -> str:
    """Return ``env_id`` if it is known; UnknownNameError with close matches otherwise."""
    known = trainable_env_ids()
    if env_id in known or is_multiagent_env_id(env_id):
        return env_id
    if env_id in gym.registry:  # registered but of a family we do not list (e.g. Atari)
        return env_id
    candidates = list(known) + list(gym.registry)
    close = difflib.get_close_matches(env_id, candidates, n=5, cutoff=0.5)
    lowered = {c.lower(): c for c in candidates}
    if env_id.lower() in lowered:
        close.insert(0, lowered[env_id.lower()])
    hint = f" Close matches: {', '.join(dict.fromkeys(close))}." if close else ""
    raise UnknownNameError(
        f"unknown environment id {env_id!r}.{hint} Run `fleetmind envs` to list them all."
    )
