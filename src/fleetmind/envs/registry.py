"""The one environment registry: what ``fleetmind envs`` lists and ``fleetmind train`` builds.

An id is looked up, in this order, among

1. the entries registered here (:class:`EnvEntry`): fleetmind's scenarios and
   PettingZoo's MPE2 games (:mod:`fleetmind.envs.scenarios.builtin`), and yours;
2. Gymnasium's own registry (``gymnasium.register``): single-agent envs, of which
   the classic-control and toy-text ones are listed;
3. ``package.module:callable``: a team of the PettingZoo parallel env the
   callable returns (it takes no arguments).

Any other id raises UnknownNameError with close matches. Building checks the form
that the algorithm needs::

    register_env(team_entry("my/game-v0", MyParallelEnv, family="my games"))
    lookup_env("my/game-v0").is_team                 # True
    make_team_vector_env("my/game-v0", num_envs=8)   # 8 copies, every agent of each
    make_vector_env("CartPole-v1", num_envs=8)       # single-agent form

Layers: the adapters (:mod:`.gym_vector`, :mod:`.team`, :mod:`.spaces`) know no id
but Gymnasium's; the scenarios build on them and describe their ids as entries;
this module sits on top of both.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from functools import partial
from typing import Any

import gymnasium as gym

from fleetmind.core.errors import ConfigError, UnknownNameError
from fleetmind.envs.env_entry import EnvEntry, ScenarioBaselines, is_entry_point, team_entry
from fleetmind.envs.gym_vector import gymnasium_env_ids, gymnasium_family, make_gym_vector_env
from fleetmind.envs.scenarios.builtin import BUILTIN_ENTRIES
from fleetmind.envs.team import MultiAgentVectorEnv
from fleetmind.envs.variants import apply_params


def _gymnasium_entry(env_id: str) -> EnvEntry:
    return EnvEntry(
        env_id, gymnasium_family(env_id), make_vector=partial(make_gym_vector_env, env_id)
    )


class EnvRegistry:
    """Registered entries, with Gymnasium's registry and entry points behind them."""

    def __init__(self, entries: Iterable[EnvEntry] = ()) -> None:
        self._entries: dict[str, EnvEntry] = {}
        for entry in entries:
            self.register(entry)

    def register(self, entry: EnvEntry, *, replace: bool = False) -> None:
        """Add ``entry``; ConfigError when its id is registered already (unless
        ``replace``). A registered id takes precedence over a Gymnasium one."""
        old = self._entries.get(entry.env_id)
        if old is not None and not replace:
            raise ConfigError(
                f"environment id {entry.env_id!r} is already registered (family "
                f"{old.family!r}); choose another id, or pass replace=True to replace it"
            )
        self._entries[entry.env_id] = entry

    def unregister(self, env_id: str) -> None:
        """Remove a registered id; UnknownNameError when it is not registered."""
        if self._entries.pop(env_id, None) is None:
            raise UnknownNameError(f"environment id {env_id!r} is not registered")

    def lookup(self, env_id: str) -> EnvEntry:
        """The entry of ``env_id``; UnknownNameError with close matches when unknown."""
        entry = self._entries.get(env_id)
        if entry is not None:
            return entry
        if env_id in gym.registry:
            return _gymnasium_entry(env_id)
        if is_entry_point(env_id):
            return team_entry(env_id, env_id)
        raise UnknownNameError(self._unknown(env_id))

    def baselines(self, env_id: str) -> ScenarioBaselines:
        """The baseline policies of ``env_id``; UnknownNameError (with close matches among
        the ids that have baselines) when it has none."""
        entry = self._entries.get(env_id)
        if entry is not None and entry.baselines is not None:
            return entry.baselines
        runnable = {e.env_id: e.family for e in self._entries.values() if e.baselines}
        close = difflib.get_close_matches(env_id, list(runnable), n=3, cutoff=0.5)
        if entry is None and close:
            family = runnable[close[0]]
            raise UnknownNameError(
                f"unknown {family} scenario {env_id!r}. Close matches: {', '.join(close)}."
            )
        known = entry is not None or env_id in gym.registry
        what = "has no baseline policies" if known else "is not a known scenario"
        raise UnknownNameError(
            f"environment id {env_id!r} {what}; `fleetmind baseline` runs on {', '.join(runnable)}"
        )

    def listed(self) -> list[EnvEntry]:
        """What ``fleetmind envs`` lists: Gymnasium's classic-control and toy-text ids
        (sorted), then the registered ids whose package is installed (in order)."""
        gymnasium = [_gymnasium_entry(env_id) for env_id in gymnasium_env_ids()]
        return gymnasium + [e for e in self._entries.values() if e.installed]

    def env_ids(self) -> dict[str, str]:
        """Every listed id, id -> family."""
        return {entry.env_id: entry.family for entry in self.listed()}

    def _unknown(self, env_id: str) -> str:
        candidates = list(dict.fromkeys([*self._entries, *gym.registry]))
        close = difflib.get_close_matches(env_id, candidates, n=5, cutoff=0.5)
        lowered = {c.lower(): c for c in candidates}
        if env_id.lower() in lowered:
            close.insert(0, lowered[env_id.lower()])
        hint = f" Close matches: {', '.join(dict.fromkeys(close))}." if close else ""
        return f"unknown environment id {env_id!r}.{hint} Run `fleetmind envs` to list them all."


REGISTRY = EnvRegistry(BUILTIN_ENTRIES)
"""The registry fleetmind trains from: the built-in ids, and those registered with
:func:`register_env` (register before training starts, in every process that
builds the env)."""


def register_env(entry: EnvEntry, *, replace: bool = False) -> None:
    """Make ``entry.env_id`` trainable (see :meth:`EnvRegistry.register`)."""
    REGISTRY.register(entry, replace=replace)


def unregister_env(env_id: str) -> None:
    """Remove an id added with :func:`register_env`."""
    REGISTRY.unregister(env_id)


def lookup_env(env_id: str) -> EnvEntry:
    """The entry of ``env_id``; UnknownNameError with close matches when unknown."""
    return REGISTRY.lookup(env_id)


def lookup_baselines(env_id: str) -> ScenarioBaselines:
    """The baseline policies of ``env_id`` (see :meth:`EnvRegistry.baselines`)."""
    return REGISTRY.baselines(env_id)


def resolve_env_id(env_id: str) -> str:
    """Return ``env_id`` if it is known; UnknownNameError with close matches otherwise."""
    return lookup_env(env_id).env_id


def trainable_env_ids() -> dict[str, str]:
    """Every id ``fleetmind envs`` lists, id -> family."""
    return REGISTRY.env_ids()


def _check_count(num_envs: int) -> None:
    if num_envs <= 0:
        raise ConfigError(f"number of environments must be positive, got {num_envs}")


def make_vector_env(
    env_id: str, num_envs: int, params: Mapping[str, Any] | None = None
) -> gym.vector.VectorEnv[Any, Any, Any]:
    """``num_envs`` copies of ``env_id`` as one single-agent Gymnasium vector env; with
    ``params``, the variant whose constants they name (:mod:`fleetmind.envs.variants`)."""
    _check_count(num_envs)
    entry = lookup_env(env_id)
    if entry.make_vector is None:
        raise ConfigError(
            f"{env_id} is a multi-agent environment without a single-agent form; train it "
            "with --algo mappo or --algo ippo"
        )
    env = entry.make_vector(num_envs)
    if params:
        try:
            apply_params(env, env_id, params)
        except BaseException:
            env.close()
            raise
    return env


def make_team_vector_env(env_id: str, num_envs: int) -> MultiAgentVectorEnv:
    """``num_envs`` copies of the multi-agent env ``env_id`` as one team vector env."""
    _check_count(num_envs)
    entry = lookup_env(env_id)
    if entry.make_team is None:
        raise ConfigError(
            f"{env_id} is a single-agent environment; train it with a single-agent "
            "algorithm (--algo ppo)"
        )
    return entry.make_team(num_envs)
