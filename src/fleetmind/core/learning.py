"""The training vocabulary: what collects experience and what learns from it.

A run, in one process or across many, is this loop::

    policy = learner.rollout_policy()          # behaviour policy, numpy in and out
    while not done:
        out = policy.step(model_input)         # StepOutput: actions, log-probs, values
        ... step the environment; after T steps a Trajectory [T, E] ...
        metrics = learner.update(trajectory)   # version += 1
    checkpoint = learner.state_dict()

Several learners that train one policy together share their updates through a
:class:`SumReducer`. Algorithms implement these protocols; the runtime calls them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from fleetmind.core.agent import Policy
from fleetmind.core.batch import Trajectory


@dataclass
class StepOutput:
    """The behaviour policy's answer for a batch of ``E`` model inputs."""

    actions: np.ndarray
    """Actions in the policy's own space, ``[E, *action_shape]``."""
    log_probs: np.ndarray
    """Log-probabilities of those actions, ``[E]`` (zeros where not defined)."""
    values: np.ndarray
    """Critic values of the inputs, ``[E]`` (zeros where not defined)."""


class RolloutPolicy(Protocol):
    """The behaviour policy an actor runs while collecting experience."""

    def step(self, model_input: np.ndarray) -> StepOutput:
        """Sample actions for ``[E, *obs_shape]`` model inputs."""
        ...


class SumReducer(Protocol):
    """Sums equal-shaped arrays across the learners that train one policy together.

    Learners built with one (``learner.reducer = ...``) call it with the same
    sequence of shapes on every learner; each call returns the element-wise sum
    over all of them. ``fleetmind.runtime.learner.collective`` implements it with
    torch.distributed; the algorithm never learns how.
    """

    world_size: int
    """Learners taking part."""

    def all_reduce_sum(self, values: np.ndarray) -> np.ndarray:
        """The element-wise sum of ``values`` over every learner (float32 or float64)."""
        ...


class Learner(Protocol):
    """Owns the parameters and turns trajectories into updates."""

    version: int
    """Number of updates applied so far."""
    env_steps: int
    """Environment steps (valid or not) learned from so far; drives schedules."""
    total_env_steps: int | None
    """Step budget of the run, set by the trainer, for learning-rate or epsilon
    schedules; ``None`` when unknown."""

    def rollout_policy(self) -> RolloutPolicy:
        """A behaviour policy that always reads the current parameters."""
        ...

    def inference_policy(self) -> Policy:
        """A policy for evaluation and serving (deterministic on request)."""
        ...

    def update(self, trajectory: Trajectory) -> dict[str, float]:
        """Learn from one trajectory; return scalar metrics; bump :attr:`version`."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume: parameters, optimizer, counters."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned."""
        ...
