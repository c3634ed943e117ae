"""The agent: perceive -> decide -> act.

An :class:`Agent` turns raw observations into environment actions in three steps::

    model_input = agent.perceive(observations)      # normalise, stack, mask
    decision = agent.policy.decide(model_input)     # tabular, bandit or neural policy
    actions = agent.actuate(decision.actions)       # clip to bounds, map to env actions

Trainers build agents; ``fleetmind.load(run_dir)`` restores one from a checkpoint;
the inference server calls :meth:`Agent.decide_batch` to answer requests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np

from fleetmind.core.errors import InvalidInputError
from fleetmind.core.spaces import SpaceSpec

Perceiver = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of raw observations to a batch of model inputs."""

Actuator = Callable[[np.ndarray], np.ndarray]
"""Maps a batch of policy actions to a batch of environment actions."""


@dataclass
class Decision:
    """What a policy decided for a batch of ``B`` model inputs."""

    actions: np.ndarray
    """Chosen actions, ``[B, *action_shape]``."""
    outputs: dict[str, np.ndarray] = field(default_factory=dict)
    """Named ``[B, ...]`` arrays that explain the choice (``action_probs``,
    ``action_mean``, ``action_log_std``, ``value``)."""


class Policy(Protocol):
    """Decides actions for a batch of model inputs."""

    @property
    def output_specs(self) -> dict[str, tuple[int, ...]]:
        """Per-row shape of each array in :attr:`Decision.outputs`."""
        ...

    def decide(self, model_input: np.ndarray, deterministic: bool = False) -> Decision:
        """Choose actions for ``model_input`` (``[B, *obs_shape]``)."""
        ...


@runtime_checkable
class FreezablePolicy(Policy, Protocol):
    """A policy with a faster path for parameters that will not change again."""

    def frozen_decider(self, perceive: Perceiver) -> Callable[[np.ndarray], Decision]:
        """Deterministic decisions for checked raw observations, ``perceive`` included."""
        ...


def identity(batch: np.ndarray) -> np.ndarray:
    """A perceiver or actuator that changes nothing."""
    return batch


class Agent:
    """A policy with its observation preprocessing and action mapping."""

    def __init__(
        self,
        policy: Policy,
        observation_space: SpaceSpec,
        action_space: SpaceSpec,
        perceive: Perceiver = identity,
        actuate: Actuator = identity,
    ) -> None:
        self.policy = policy
        self.observation_space = observation_space
        self.action_space = action_space
        self.perceive = perceive
        self.actuate = actuate

    def decide_batch(self, observations: np.ndarray, deterministic: bool = True) -> Decision:
        """Decide for ``[B, *obs_shape]`` raw observations; actions are env actions."""
        obs = np.asarray(observations, dtype=np.float32)
        self.observation_space.check_batch(obs)
        if obs.shape[0] == 0:
            raise InvalidInputError("observation batch is empty; send at least one row")
        if not np.all(np.isfinite(obs)):
            raise InvalidInputError("observation batch contains NaN or infinite values")
        decision = self.policy.decide(self.perceive(obs), deterministic=deterministic)
        decision.actions = self.actuate(decision.actions)
        return decision

    def frozen_decider(self) -> Callable[[np.ndarray], Decision]:
        """Deterministic decisions for a model that will not be trained any more (serving).

        The function takes ``[B, *obs_shape]`` FP32 observations that the caller has
        already checked (shape, finite values), possibly read-only views of received
        bytes, and returns environment actions. Policies that know a faster path for
        fixed parameters (:class:`FreezablePolicy`) provide it.
        """
        actuate = self.actuate
        if isinstance(self.policy, FreezablePolicy):
            decide = self.policy.frozen_decider(self.perceive)
        else:

            def decide(obs: np.ndarray) -> Decision:
                # Torch refuses read-only memory; a received request may be exactly that.
                obs = obs if obs.flags.writeable else obs.copy()
                return self.policy.decide(self.perceive(obs), deterministic=True)

        if actuate is identity:
            return decide

        def decide_and_actuate(obs: np.ndarray) -> Decision:
            decision = decide(obs)
            decision.actions = actuate(decision.actions)
            return decision

        return decide_and_actuate

    def act_batch(self, observations: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """Environment actions for ``[B, *obs_shape]`` raw observations."""
        return self.decide_batch(observations, deterministic).actions

    def act(self, observation: np.ndarray, deterministic: bool = True) -> np.ndarray:
        """The environment action for one raw observation."""
        batch = np.asarray(observation, dtype=np.float32)[None]
        action: np.ndarray = self.act_batch(batch, deterministic)[0]
        return action
