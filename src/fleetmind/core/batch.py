"""Rollout data as plain numpy arrays.

A :class:`Trajectory` is what an actor collects: ``T`` steps of ``E`` environments,
every array ``[T, E, ...]``. It is the unit that travels from actors to learners.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields

import numpy as np

from fleetmind.core.errors import InvalidInputError


@dataclass
class Trajectory:
    """``T`` steps of ``E`` environments; every array has leading dims ``[T, E]``.

    With Gymnasium's next-step autoreset, the step after an episode ends only
    resets its environment: ``valid`` is False there and the learner ignores it.
    ``decision`` (optional) marks the steps whose action could change anything:
    an environment reports through ``info["decision"]`` when a choice is locked
    (a traffic signal inside its minimum green); policy-gradient learners then
    leave those steps out of the policy loss, while their rewards and values
    still count.
    ``next_obs_value`` is the critic's value of the observation that follows each
    step, so truncated episodes bootstrap correctly.
    """

    obs: np.ndarray
    """Model inputs seen before each step (already normalised), ``[T, E, *obs]``."""
    actions: np.ndarray
    """Actions taken, ``[T, E, *act]``."""
    log_probs: np.ndarray
    """Log-probability of each action under the behaviour policy, ``[T, E]``."""
    values: np.ndarray
    """Critic value of ``obs``, ``[T, E]``."""
    rewards: np.ndarray
    """Rewards received, ``[T, E]``."""
    terminated: np.ndarray
    """True where the episode ended in a terminal state, ``[T, E]``."""
    truncated: np.ndarray
    """True where the episode was cut off (time limit), ``[T, E]``."""
    valid: np.ndarray
    """False on autoreset steps, whose action had no effect, ``[T, E]``."""
    next_values: np.ndarray
    """Critic value of the observation after each step, ``[T, E]``."""
    policy_version: int = 0
    """Version of the policy that chose the actions."""
    decision: np.ndarray | None = None
    """True where the action was a real choice, ``[T, E]`` (a subset of ``valid``);
    None when the environment reports no locked steps (every valid step decides)."""

    def __post_init__(self) -> None:
        lead = self.rewards.shape
        if len(lead) != 2:
            raise InvalidInputError(f"rewards must be [T, E]; got shape {list(lead)}")
        for f in fields(self):
            value = getattr(self, f.name)
            if isinstance(value, np.ndarray) and value.shape[:2] != lead:
                raise InvalidInputError(
                    f"trajectory field {f.name!r} has leading shape {list(value.shape[:2])}; "
                    f"expected {list(lead)} like rewards"
                )

    def decision_mask(self) -> np.ndarray:
        """``[T, E]`` steps that enter a policy loss: ``decision`` (when given) and ``valid``."""
        if self.decision is None:
            return self.valid
        out: np.ndarray = self.decision & self.valid
        return out

    @property
    def num_steps(self) -> int:
        """``T``."""
        return int(self.rewards.shape[0])

    @property
    def num_envs(self) -> int:
        """``E``."""
        return int(self.rewards.shape[1])


def concat_trajectories(parts: Sequence[Trajectory]) -> Trajectory:
    """Several ``[T, E_k]`` trajectories as one ``[T, sum E_k]`` (the environment axis).

    The oldest policy version is kept; ``decision`` is kept when any part has one
    (the others count every valid step as a decision).
    """
    if len(parts) == 1:
        return parts[0]
    names = [f.name for f in fields(Trajectory) if f.name not in ("policy_version", "decision")]
    arrays = {n: np.concatenate([getattr(t, n) for t in parts], axis=1) for n in names}
    version = min(t.policy_version for t in parts)
    decision = None
    if any(t.decision is not None for t in parts):
        decision = np.concatenate([t.decision_mask() for t in parts], axis=1)
    return Trajectory(**arrays, policy_version=version, decision=decision)
