"""Serving a team checkpoint (MAPPO, IPPO, the traffic-grid signals).

A team run directory served as model ``T`` becomes several models:

* ``T.<agent>`` for each agent (``spread.agent_0``, ``grid.tl_0_1``): that agent
  alone, with its own metadata (its observation and action shapes), exactly as a
  single-agent model: ``observation [B, *obs]`` in, ``action [B, ...]`` and its
  policy's outputs out, explanations included;
* ``T`` for the whole team in one request: ``observation [B, N, *obs]`` (row ``b``
  holds every agent's observation, in the team's order) in, and every output
  with the agent axis after the batch axis (``action [B, N]``,
  ``action_probs [B, N, n]``) out. The whole team needs agents whose observation
  and action spaces agree (traffic signals, MPE's homogeneous teams).

A ``.`` separates team and agent because the name must work as one path segment
of the HTTP flavour (``/v2/models/grid.tl_0_1/infer``) as well as over gRPC.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np

from fleetmind.core.agent import Agent, Decision
from fleetmind.core.errors import CheckpointError
from fleetmind.core.spaces import SpaceSpec

SEPARATOR = "."
"""Between a team's model name and an agent's name: ``team.agent``."""


def member_name(team: str, agent: str) -> str:
    """The model name of ``agent`` of the team served as ``team``."""
    return f"{team}{SEPARATOR}{agent}"


class TeamPolicy:
    """Every agent's deterministic decision for ``[B, N, *obs]`` observations."""

    not_explainable = (
        "a whole team's decision has one explanation per agent: ask each agent's model "
        "(team.agent) for its own"
    )

    def __init__(self, agents: Mapping[str, Agent]) -> None:
        self.agents = dict(agents)
        self._deciders: list[Callable[[np.ndarray], Decision]] = [
            agent.frozen_decider() for agent in self.agents.values()
        ]
        first = next(iter(self.agents.values()))
        self._specs = {k: (len(self.agents), *v) for k, v in first.policy.output_specs.items()}

    @property
    def output_specs(self) -> dict[str, tuple[int, ...]]:
        """Per-row shapes: each agent's outputs, agent axis first."""
        return self._specs

    def decide(self, model_input: np.ndarray, deterministic: bool = True) -> Decision:
        """Every agent's decision on its own column of ``model_input``."""
        decisions = [decide(model_input[:, i]) for i, decide in enumerate(self._deciders)]
        actions = np.stack([np.asarray(d.actions) for d in decisions], axis=1)
        outputs = {
            name: np.stack([d.outputs[name] for d in decisions], axis=1)
            for name in decisions[0].outputs
        }
        return Decision(actions, outputs)


def _stacked(space: SpaceSpec, count: int) -> SpaceSpec:
    """``count`` copies of ``space`` side by side (agent axis first)."""
    if space.kind == "discrete":
        return SpaceSpec("multi_discrete", (count,), "int64", nvec=(int(space.n or 0),) * count)
    low = None if space.low is None else tuple(np.tile(space.low, count).tolist())
    high = None if space.high is None else tuple(np.tile(space.high, count).tolist())
    return SpaceSpec(space.kind, (count, *space.shape), space.dtype, low=low, high=high)


def team_agent(agents: Mapping[str, Agent]) -> Agent:
    """One :class:`Agent` over the whole team (see the module docstring)."""
    members = list(agents.values())
    obs, act = members[0].observation_space, members[0].action_space
    for name, agent in agents.items():
        if agent.observation_space.shape != obs.shape or agent.action_space != act:
            raise CheckpointError(
                f"agent {name!r} observes {agent.observation_space.shape} and acts in "
                f"{agent.action_space.kind}{agent.action_space.shape}, unlike the first agent: "
                "the whole team cannot be one model; serve its agents one by one"
            )
    count = len(members)
    return Agent(TeamPolicy(agents), _stacked(obs, count), _stacked(act, count))
