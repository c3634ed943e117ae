"""Registry of the algorithms ``fleetmind train --algo`` accepts."""

from __future__ import annotations

import difflib
import importlib

from fleetmind.algos.base import AlgoSpec
from fleetmind.core.errors import UnknownNameError

# name -> module exposing SPEC; modules are imported on first use.
_MODULES: dict[str, str] = {
    "ppo": "fleetmind.algos.ppo.learner",
    "impala": "fleetmind.algos.impala.learner",
    "dqn": "fleetmind.algos.dqn.learner",
    "q_learning": "fleetmind.algos.tabular.q_learning",
    "sarsa": "fleetmind.algos.tabular.sarsa",
    # multi-agent (PettingZoo) algorithms: fleetmind.algos.team.ppo and .impala
    "ippo": "fleetmind.algos.team.ippo",
    "mappo": "fleetmind.algos.team.mappo",
    "team-impala": "fleetmind.algos.team.impala",
}

# name -> ("module:class" of its config, one-line summary), in modules without torch:
# the CLI builds every algorithm's flags and help from these without importing the
# algorithms (a test checks they equal each SPEC's own).
_CLI: dict[str, tuple[str, str]] = {
    "ppo": (
        "fleetmind.algos.ppo.config:PPOConfig",
        "Proximal Policy Optimization (discrete and continuous actions)",
    ),
    "impala": (
        "fleetmind.algos.impala.config:ImpalaConfig",
        "IMPALA: V-trace actor-critic for asynchronous actors (--mode async)",
    ),
    "dqn": (
        "fleetmind.algos.dqn.config:DQNConfig",
        "Deep Q-learning: double, dueling, n-step, target network, (prioritised) replay",
    ),
    "q_learning": (
        "fleetmind.algos.tabular.config:TabularLearnerConfig",
        "tabular Q-learning (off-policy), epsilon-greedy, for Discrete observations and actions",
    ),
    "sarsa": (
        "fleetmind.algos.tabular.config:TabularLearnerConfig",
        "tabular SARSA (on-policy), epsilon-greedy, for Discrete observations and actions",
    ),
    "ippo": (
        "fleetmind.algos.team.config:IPPOConfig",
        "Independent PPO per agent (optionally shared parameters or shared experience)",
    ),
    "mappo": (
        "fleetmind.algos.team.config:MAPPOConfig",
        "Multi-agent PPO: shared actor, centralised critic on the global state",
    ),
    "team-impala": (
        "fleetmind.algos.team.config:TeamImpalaConfig",
        "Team IMPALA: V-trace per agent network for asynchronous actors (--mode async)",
    ),
}


def algorithm_names() -> list[str]:
    """Names of all registered algorithms."""
    return sorted(_MODULES)


def get_config_cls(name: str) -> type:
    """The config dataclass of algorithm ``name``, without importing the algorithm."""
    module, _, cls = _CLI[_known(name)][0].partition(":")
    config_cls: type = getattr(importlib.import_module(module), cls)
    return config_cls


def algorithm_summary(name: str) -> str:
    """One line on algorithm ``name``, without importing it."""
    return _CLI[_known(name)][1]


def _known(name: str) -> str:
    """``name`` in lower case; UnknownNameError with close matches when unregistered."""
    key = name.lower()
    if key not in _MODULES:
        close = difflib.get_close_matches(key, list(_MODULES), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownNameError(
            f"unknown algorithm {name!r}; choose one of {', '.join(algorithm_names())}.{hint}"
        )
    return key


def get_algorithm(name: str) -> AlgoSpec:
    """The spec of algorithm ``name``; UnknownNameError with close matches otherwise."""
    module = _MODULES[_known(name)]
    spec = importlib.import_module(module).SPEC
    if not isinstance(spec, AlgoSpec):
        raise TypeError(f"{module}.SPEC is not an AlgoSpec")
    return spec
