"""Registry of the algorithms ``fleetmind train --algo`` accepts."""

from __future__ import annotations

import difflib
import importlib

from fleetmind.algos.base import AlgoSpec
from fleetmind.core.errors import UnknownNameError

# name -> module exposing SPEC; modules are imported on first use.
_MODULES: dict[str, str] = {
    "ppo": "fleetmind.algos.ppo",
    "impala": "fleetmind.algos.impala",
    "dqn": "fleetmind.algos.dqn",
    "q_learning": "fleetmind.algos.q_learning",
    "sarsa": "fleetmind.algos.sarsa",
    # multi-agent (PettingZoo) algorithms: fleetmind.algos.multiagent_ppo
    "ippo": "fleetmind.algos.ippo",
    "mappo": "fleetmind.algos.mappo",
}


def algorithm_names() -> list[str]:
    """Names of all registered algorithms."""
    return sorted(_MODULES)


def get_algorithm(name: str) -> AlgoSpec:
    """The spec of algorithm ``name``; UnknownNameError with close matches otherwise."""
    module = _MODULES.get(name.lower())
    if module is None:
        close = difflib.get_close_matches(name.lower(), list(_MODULES), n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise UnknownNameError(
            f"unknown algorithm {name!r}; choose one of {', '.join(algorithm_names())}.{hint}"
        )
    spec = importlib.import_module(module).SPEC
    if not isinstance(spec, AlgoSpec):
        raise TypeError(f"{module}.SPEC is not an AlgoSpec")
    return spec
