"""A single-agent learner seen as a team of one.

The runtime trains teams: one trajectory per agent in, one rollout output per agent
out. A single-agent algorithm (PPO, IMPALA, DQN, ...) joins that stack through
:class:`TeamOfOne` without a line of its own changing::

    team = TeamOfOne(spec.build(config, observation_space, action_space, seed))
    policy = team.rollout_policy()            # step([inputs]) -> [StepOutput]
    metrics = team.update([trajectory])       # the learner's own update
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from fleetmind.core.agent import Policy
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import InvalidInputError
from fleetmind.core.learning import Learner, RolloutPolicy, StepOutput


class TeamOfOnePolicy:
    """A single-agent rollout policy behind the team interface."""

    def __init__(self, policy: RolloutPolicy) -> None:
        self.policy = policy

    def step(self, model_inputs: Sequence[np.ndarray]) -> list[StepOutput]:
        """The one agent's step."""
        return [self.policy.step(model_inputs[0])]


class TeamOfOne:
    """The team interface of one single-agent :class:`Learner` (counters shared)."""

    def __init__(self, learner: Learner) -> None:
        self.learner = learner

    @property
    def version(self) -> int:
        """Updates applied so far."""
        return self.learner.version

    @version.setter
    def version(self, value: int) -> None:
        self.learner.version = value

    @property
    def env_steps(self) -> int:
        """Environment steps learned from so far."""
        return self.learner.env_steps

    @env_steps.setter
    def env_steps(self, value: int) -> None:
        self.learner.env_steps = value

    @property
    def total_env_steps(self) -> int | None:
        """Step budget of the run, for schedules."""
        return self.learner.total_env_steps

    @total_env_steps.setter
    def total_env_steps(self, value: int | None) -> None:
        self.learner.total_env_steps = value

    @property
    def reducer(self) -> Any:
        """The learner's gradient reducer (AttributeError: it cannot share updates)."""
        return self.learner.reducer  # type: ignore[attr-defined]

    @reducer.setter
    def reducer(self, value: Any) -> None:
        self.learner.reducer = value  # type: ignore[attr-defined]

    @property
    def layout(self) -> None:
        """A single agent's model input is its (normalised) observation."""
        return None

    def rollout_policy(self) -> TeamOfOnePolicy:
        """The learner's behaviour policy, one agent."""
        return TeamOfOnePolicy(self.learner.rollout_policy())

    def agent_policies(self) -> list[Policy]:
        """The learner's inference policy."""
        return [self.learner.inference_policy()]

    def update(self, trajectories: Sequence[Trajectory]) -> dict[str, float]:
        """The learner's update on the one agent's trajectory."""
        if len(trajectories) != 1:
            raise InvalidInputError(
                f"a single-agent learner updates on one agent's trajectory; got "
                f"{len(trajectories)} (a team environment needs a team algorithm)"
            )
        return self.learner.update(trajectories[0])

    def state_dict(self) -> dict[str, Any]:
        """The learner's state."""
        return self.learner.state_dict()

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the learner's state."""
        self.learner.load_state_dict(state)
