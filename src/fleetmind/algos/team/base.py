"""What a multi-agent algorithm provides to the multi-agent trainer and loader.

A multi-agent algorithm module (``fleetmind.algos.team.mappo``, ``.ippo``, ``.impala``)
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

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fleetmind.algos.base import AlgoSpec
from fleetmind.core.learning import TeamLearner
from fleetmind.envs.team import MultiAgentSpec


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

    build_team: Callable[[Any, MultiAgentSpec, int], TeamLearner]
    """``build_team(config, env_spec, seed) -> TeamLearner``."""


def multiagent_spec(
    name: str,
    summary: str,
    config_cls: type,
    build_team: Callable[[Any, MultiAgentSpec, int], TeamLearner],
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
