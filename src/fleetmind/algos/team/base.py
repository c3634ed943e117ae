"""What a multi-agent algorithm provides to the multi-agent trainer and loader.

A multi-agent algorithm module (``fleetmind.algos.team.mappo``, ``fleetmind.algos.team.ippo``)
exposes a :class:`MultiAgentAlgoSpec` named ``SPEC``. The trainer uses it like this::

    learner = spec.build_team(config, env_spec, seed)
    layout = learner.layout                      # how per-agent model inputs are built
    policy = learner.rollout_policy()
    while not done:
        inputs = [layout.model_input(i, obs, state) for i in agents]
        outs = policy.step(inputs)               # one StepOutput per agent
        ... collect one Trajectory per agent ...
        metrics = learner.update(trajectories)   # version += 1

``learner.agent_policies()`` gives one :class:`fleetmind.core.Policy` per agent for
evaluation and serving; each reads only that agent's own observation.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from fleetmind.algos.base import AlgoSpec
from fleetmind.core.agent import Policy
from fleetmind.core.batch import Trajectory
from fleetmind.core.learning import StepOutput
from fleetmind.envs.team import MultiAgentSpec


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


class MultiAgentLearner(Protocol):
    """Owns every agent's parameters; one update per list of per-agent trajectories."""

    version: int
    """Number of updates applied so far."""
    env_steps: int
    """Joint environment steps learned from so far (one per copy per step)."""
    total_env_steps: int | None
    """Step budget of the run for learning-rate schedules; None when unknown."""

    @property
    def layout(self) -> InputBuilder:
        """How model inputs are built."""
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


def _single_agent_build(name: str) -> Callable[..., Any]:
    def build(*_args: Any) -> Any:
        from fleetmind.core.errors import ConfigError

        raise ConfigError(
            f"{name} trains multi-agent (PettingZoo) environments; pick one that "
            "`fleetmind envs` lists as multi-agent, or use --algo ppo for a single agent"
        )

    return build


@dataclass(frozen=True)
class MultiAgentAlgoSpec(AlgoSpec):
    """Registry entry of a multi-agent algorithm (``build`` refuses single-agent envs)."""

    build_team: Callable[[Any, MultiAgentSpec, int], MultiAgentLearner]
    """``build_team(config, env_spec, seed) -> MultiAgentLearner``."""


def multiagent_spec(
    name: str,
    summary: str,
    config_cls: type,
    build_team: Callable[[Any, MultiAgentSpec, int], MultiAgentLearner],
    rollout_length: Callable[[Any], int],
    supports_action: Callable[[Any], str | None],
) -> MultiAgentAlgoSpec:
    """A :class:`MultiAgentAlgoSpec` whose single-agent ``build`` explains itself."""
    return MultiAgentAlgoSpec(
        name=name,
        summary=summary,
        config_cls=config_cls,
        build=_single_agent_build(name),
        rollout_length=rollout_length,
        supports_action=supports_action,
        build_team=build_team,
    )


def is_multiagent_algo(spec: AlgoSpec) -> bool:
    """True for a spec that trains multi-agent environments."""
    return isinstance(spec, MultiAgentAlgoSpec)
