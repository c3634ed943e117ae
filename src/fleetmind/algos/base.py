"""What an algorithm provides to the trainers, the evaluator and the server.

An algorithm module (``fleetmind.algos.ppo.learner``, ...) exposes one :class:`AlgoSpec`
named ``SPEC``. Trainers use it like this::

    learner = spec.build(config, observation_space, action_space, seed)
    policy = learner.rollout_policy()          # behaviour policy, numpy in and out
    while not done:
        trajectory = collect(env, policy, spec.rollout_length(config))
        metrics = learner.update(trajectory)   # version += 1
    store.save({"learner": learner.state_dict(), ...})

and the server or ``fleetmind.load`` use ``learner.inference_policy()``, a
:class:`fleetmind.core.Policy`. Algorithms know nothing of processes or sockets.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleetmind.core.learning import Learner
from fleetmind.core.spaces import SpaceSpec


@dataclass(frozen=True)
class AlgoSpec:
    """The registry entry of one algorithm."""

    name: str
    """Name used on the command line (``--algo NAME``)."""
    summary: str
    """One line for ``--help``."""
    config_cls: type
    """The algorithm's config dataclass (one docstring per field)."""
    build: Callable[[Any, SpaceSpec, SpaceSpec, int], Learner]
    """``build(config, observation_space, action_space, seed) -> Learner``."""
    rollout_length: Callable[[Any], int]
    """Steps per environment in each trajectory handed to ``update``."""
    supports_action: Callable[[SpaceSpec], str | None]
    """``None`` if the action space is supported, else a message saying what to use."""
