"""What the environment registry knows about one id: :class:`EnvEntry`.

An entry says how to build ``E`` copies of an environment in the two forms the
trainers use:

* as a **team** (``make_team``): one :class:`MultiAgentVectorEnv` whose copies are
  PettingZoo parallel envs, for the multi-agent algorithms (``--algo mappo``);
* as a **single-agent vector env** (``make_vector``): one Gymnasium vector env, for
  the single-agent algorithms (``--algo ppo``). Gymnasium envs have only this form;
  a scenario may offer it too (traffic: one vector slot per signal of each copy).

Scenarios describe their ids with entries, and the registry
(:mod:`fleetmind.envs.registry`) collects them::

    entry = team_entry("my/game-v0", MyParallelEnv, family="my games", kwargs={"n": 3})
    entry.is_team, entry.has_single_agent_form      # True, False
    env = entry.make_team(8)                         # 8 copies of MyParallelEnv(n=3)
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from fleetmind.core.errors import ConfigError, UnknownNameError
from fleetmind.envs.team import MultiAgentVectorEnv

AgentDecider = Callable[[np.ndarray], np.ndarray]
"""One policy for every agent slot: ``[B, *obs]`` observations in, ``[B]`` actions out."""
TeamDecider = Callable[[Mapping[str, np.ndarray]], dict[str, int]]
"""Every agent's action from every agent's observation."""


@dataclass(frozen=True)
class ScenarioMeasures:
    """How a scenario measures a policy beyond its returns (traffic: waiting and travel
    times, throughput). Each returns the measures and, under ``returns``, each
    episode's return; ``fleetmind eval`` reports them. Each is a callable or
    ``"module:callable"`` (imported when first used)."""

    agent: str | Callable[[str, AgentDecider, int, int], dict[str, Any]]
    """``(env_id, decide, episodes, seed)`` for a policy shared by every agent."""
    team: str | Callable[[str, TeamDecider, int, int], dict[str, Any]]
    """``(env_id, decide_all, episodes, seed)`` for a team."""

    def of_agent(
        self, env_id: str, decide: AgentDecider, episodes: int, seed: int
    ) -> dict[str, Any]:
        """The measures of a policy shared by every agent."""
        measure = load_entry_point(self.agent, env_id)
        return measure(env_id, decide, episodes, seed)  # type: ignore[no-any-return]

    def of_team(self, env_id: str, decide: TeamDecider, episodes: int, seed: int) -> dict[str, Any]:
        """The measures of a team."""
        measure = load_entry_point(self.team, env_id)
        return measure(env_id, decide, episodes, seed)  # type: ignore[no-any-return]


BaselineRunner = Callable[..., dict[str, Any]]
"""``(env_id, policy, episodes=, seed=, overrides=)`` -> the measures of a baseline."""


@dataclass(frozen=True)
class ScenarioBaselines:
    """The hand-written policies of a scenario, which ``fleetmind baseline`` runs (traffic:
    fixed-time, max-pressure, longest-queue)."""

    policies: tuple[str, ...]
    """Their names, as ``--policy`` takes them."""
    run: str | BaselineRunner
    """``(env_id, policy, episodes=, seed=, overrides=)`` -> the measures averaged over
    the episodes and, under ``episodes``, each episode's; ``overrides`` is a mapping of
    scenario settings. A callable or ``"module:callable"`` (imported when first used)."""
    metrics: tuple[str, ...]
    """The measures the text output of ``fleetmind baseline`` prints, in order."""

    def run_policy(
        self,
        env_id: str,
        policy: str,
        episodes: int = 1,
        seed: int = 0,
        overrides: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Run ``policy`` for ``episodes`` episodes of ``env_id``; UnknownNameError for a
        policy the scenario does not have."""
        if policy not in self.policies:
            close = difflib.get_close_matches(policy, self.policies, n=3, cutoff=0.4)
            hint = f" Did you mean {', '.join(close)}?" if close else ""
            raise UnknownNameError(
                f"unknown baseline policy {policy!r} for {env_id}; choose one of "
                f"{', '.join(self.policies)}.{hint}"
            )
        runner = load_entry_point(self.run, env_id)
        return runner(  # type: ignore[no-any-return]
            env_id, policy, episodes=episodes, seed=seed, overrides=dict(overrides or {})
        )


def check_episodes(episodes: int) -> None:
    """Refuse an episode count below one (every scenario's baselines and evaluation)."""
    if episodes < 1:
        raise ConfigError(f"episodes={episodes} must be at least 1")


VectorEnvBuilder = Callable[[int], gym.vector.VectorEnv[Any, Any, Any]]
"""Builds ``E`` copies as one single-agent Gymnasium vector env."""
TeamEnvBuilder = Callable[[int], MultiAgentVectorEnv]
"""Builds ``E`` copies as one team (multi-agent) vector env."""


@dataclass(frozen=True)
class EnvEntry:
    """One environment id and how to build ``E`` copies of it."""

    env_id: str
    """The id ``fleetmind train`` accepts."""
    family: str
    """Shown next to the id by ``fleetmind envs`` (``classic_control``, ``traffic``, ...)."""
    make_vector: VectorEnvBuilder | None = None
    """``E`` copies as one single-agent vector env; None when there is no single-agent form."""
    make_team: TeamEnvBuilder | None = None
    """``E`` copies as one team vector env; None for a single-agent env."""
    package: str | None = None
    """Python package the env needs; ``fleetmind envs`` lists the id only when it is
    installed (building it without the package raises ConfigError)."""
    measures: ScenarioMeasures | None = None
    """The scenario's own evaluation measures, if it has any."""
    baselines: ScenarioBaselines | None = None
    """The scenario's baseline policies (``fleetmind baseline``), if it has any."""

    def __post_init__(self) -> None:
        if not self.env_id:
            raise ConfigError("an environment entry needs a non-empty env_id")
        if self.make_vector is None and self.make_team is None:
            raise ConfigError(
                f"environment entry {self.env_id!r} builds nothing; give make_vector, "
                "make_team or both"
            )

    @property
    def is_team(self) -> bool:
        """True when the env is multi-agent (it builds as a team)."""
        return self.make_team is not None

    @property
    def has_single_agent_form(self) -> bool:
        """True when single-agent algorithms can train it (it builds as a vector env)."""
        return self.make_vector is not None

    @property
    def installed(self) -> bool:
        """True when the package the env needs (if any) can be imported."""
        return self.package is None or importlib.util.find_spec(self.package) is not None


def is_entry_point(text: str) -> bool:
    """True for ``package.module:callable`` (the form of an id that names a factory)."""
    module, sep, attr = text.partition(":")
    return bool(sep and module and attr.isidentifier() and "/" not in module)


def load_entry_point(
    make: str | Callable[..., Any], env_id: str, package: str | None = None
) -> Callable[..., Any]:
    """The callable ``make`` names (``module:callable`` is imported now)."""
    if callable(make):
        return make
    module_name, _, attr = make.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        how = f"pip install {package}" if package else "install the package that provides it"
        raise ConfigError(
            f"environment {env_id} needs the Python module {module_name!r}, which cannot be "
            f"imported ({exc}); {how}"
        ) from exc
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise UnknownNameError(f"{module_name} has no callable {attr!r} (from {env_id!r})")
    return factory  # type: ignore[no-any-return]


def team_entry(
    env_id: str,
    make: str | Callable[..., Any],
    *,
    family: str = "pettingzoo",
    kwargs: Mapping[str, Any] | None = None,
    package: str | None = None,
    make_vector: VectorEnvBuilder | None = None,
    measures: ScenarioMeasures | None = None,
    baselines: ScenarioBaselines | None = None,
) -> EnvEntry:
    """An entry whose copies are the PettingZoo parallel envs ``make(**kwargs)`` returns.

    ``make`` is a callable or ``"module:callable"`` (imported when the first team is
    built); ``make_vector`` adds a single-agent form; ``measures`` the scenario's own
    evaluation; ``baselines`` its hand-written policies.
    """
    arguments = dict(kwargs or {})

    def make_team(num_envs: int) -> MultiAgentVectorEnv:
        factory = load_entry_point(make, env_id, package)
        return MultiAgentVectorEnv([lambda: factory(**arguments)] * num_envs, env_id)

    return EnvEntry(
        env_id, family, make_vector=make_vector, make_team=make_team, package=package,
        measures=measures, baselines=baselines,
    )  # fmt: skip
