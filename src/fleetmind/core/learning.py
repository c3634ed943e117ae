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

from collections.abc import Sequence
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


class TeamRolloutPolicy(Protocol):
    """The behaviour policy of every agent at once."""

    def step(self, model_inputs: Sequence[np.ndarray]) -> list[StepOutput]:
        """Sample actions; ``model_inputs[i]`` is agent ``i``'s ``[E, D_i]`` input."""
        ...


class InputBuilder(Protocol):
    """Builds each agent's model input from (normalised) observations and state."""

    def model_input(
        self, agent: int, obs: Sequence[np.ndarray], state: np.ndarray | None
    ) -> np.ndarray:
        """``[E, D]`` model input of agent ``agent``."""
        ...

    def actor_input(self, agent: int, obs: np.ndarray) -> np.ndarray:
        """``[B, A]`` policy input of agent ``agent`` from its own observations."""
        ...


class TeamLearner(Protocol):
    """Owns every agent's parameters; one update per list of per-agent trajectories.

    A team algorithm (MAPPO, IPPO) implements it; a single-agent :class:`Learner` joins
    as a team of one (:class:`fleetmind.algos.team_of_one.TeamOfOne`)::

        policy = learner.rollout_policy()
        outs = policy.step([layout.model_input(i, obs, state) for i in agents])
        metrics = learner.update([trajectory_of_agent_0, ...])   # version += 1
    """

    version: int
    """Number of updates applied so far."""
    env_steps: int
    """Joint environment steps learned from so far (one per copy per step)."""
    total_env_steps: int | None
    """Step budget of the run for learning-rate schedules; None when unknown."""

    @property
    def layout(self) -> InputBuilder | None:
        """How model inputs are built (None: each agent's own observation)."""
        ...

    def rollout_policy(self) -> TeamRolloutPolicy:
        """The behaviour policy (reads the current parameters)."""
        ...

    def agent_policies(self) -> list[Policy]:
        """One evaluation/serving policy per agent (input: :meth:`InputBuilder.actor_input`)."""
        ...

    def update(self, trajectories: Sequence[Trajectory]) -> dict[str, float]:
        """Learn from one ``[T, E]`` trajectory per agent; bump :attr:`version`."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        ...
