"""What every team learner shares, whatever its update: which network each agent
uses, the input layout, the behaviour and evaluation policies, the checkpoint state
and the gradient reducer of several learners.

A team learner is a list of single-network units (a PPO or an IMPALA learner over
:class:`~fleetmind.algos.team.nets.InputLayout` rows) and the agents whose data
trains each; a subclass says only how to build one unit::

    class MultiAgentPPOLearner(TeamLearnerBase):
        unit_learner = PPOLearner          # each network is trained by plain PPO

    learner.update(trajectories)   # per network: concat(trajectories[agents]) -> unit.update
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, ClassVar, Protocol

import torch

from fleetmind.algos.actor_critic.network import ActorCritic, check_supported_action
from fleetmind.algos.team.nets import ActorPolicy, InputLayout, NetSampler, SplitActorCritic
from fleetmind.core.agent import Policy
from fleetmind.core.batch import Trajectory, concat_trajectories
from fleetmind.core.errors import CheckpointError, ConfigError
from fleetmind.core.learning import SumReducer
from fleetmind.core.spaces import SpaceSpec
from fleetmind.envs.team import MultiAgentSpec


class TeamConfig(Protocol):
    """What a team learner reads of its config (:class:`~fleetmind.algos.team.config.TeamSwitches`
    and a ``validate``)."""

    share_parameters: bool
    centralized_critic: bool
    agent_id: bool
    experience_sharing: bool

    def validate(self) -> None:
        """ConfigError for values outside their domain or contradictory switches."""
        ...


def check_team(config: TeamConfig, spec: MultiAgentSpec, algo: str) -> None:
    """ConfigError when the env's agents cannot be trained with ``config``."""
    for agent, space in zip(spec.agents, spec.action_spaces, strict=True):
        problem = check_supported_action(space)
        if problem:
            raise ConfigError(f"{algo} cannot train agent {agent}: {problem}")
    if config.share_parameters and not spec.homogeneous:
        detail = ", ".join(
            f"{a}: obs {o.shape} action {s.kind}{'' if s.n is None else f'({s.n})'}"
            f"{'' if s.kind != 'box' else str(s.shape)}"
            for a, o, s in zip(
                spec.agents, spec.observation_spaces, spec.action_spaces, strict=True
            )
        )
        raise ConfigError(
            f"parameter sharing needs agents with identical observation and action spaces, "
            f"but they differ ({detail}); pass --no-{algo}.share-parameters (share_parameters: "
            "false) to give each agent its own network"
        )


def groups_of(spec: MultiAgentSpec) -> list[int]:
    """Group index of each agent: same name prefix (``adversary_0`` -> ``adversary``)
    and identical spaces."""
    keys: list[tuple[Any, ...]] = []
    out = []
    for agent, obs, act in zip(
        spec.agents, spec.observation_spaces, spec.action_spaces, strict=True
    ):
        key = (agent.rsplit("_", 1)[0], obs, act)
        if key not in keys:
            keys.append(key)
        out.append(keys.index(key))
    return out


def use_layout_network(
    unit: Any, config: Any, actor_dim: int, critic_dim: int, action_space: SpaceSpec
) -> None:
    """Give ``unit`` (a single-agent learner over layout rows) a network whose critic
    reads its own columns of the row (a centralised critic). Without critic columns
    the unit's own :class:`ActorCritic` over ``actor_dim`` columns fits as it is."""
    if not critic_dim:
        return
    unit.net = SplitActorCritic(
        actor_dim,
        critic_dim,
        action_space,
        config.hidden_sizes,
        config.activation,
        config.init_log_std,
    )
    unit._optimizer = None  # built over the split network on first use


class NetUnit(Protocol):
    """One network and its single-agent learner (PPO, IMPALA) over layout rows."""

    net: ActorCritic
    env_steps: int
    total_env_steps: int | None
    reducer: SumReducer | None

    def update(self, trajectory: Trajectory) -> dict[str, float]:
        """Learn from the ``[T, E]`` rows of every agent this network trains on."""
        ...

    def state_dict(self) -> dict[str, Any]:
        """Parameters, optimizer and counters."""
        ...

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        ...


class TeamLearnerBase:
    """All agents' networks, one :class:`NetUnit` each; see the module docstring."""

    unit_learner: ClassVar[type[Any]]
    """The single-agent learner that trains each network: ``(config, layout-row space,
    action space, seed)`` (PPOLearner, ImpalaLearner)."""

    def __init__(self, config: TeamConfig, spec: MultiAgentSpec, seed: int, algo: str) -> None:
        config.validate()
        check_team(config, spec, algo)
        self.config = config
        self.spec = spec
        n = len(spec.agents)
        share = config.share_parameters
        self.layout = InputLayout(spec, share and config.agent_id, config.centralized_critic)
        self.net_of_agent = [0] * n if share else list(range(n))
        owners = [0] if share else list(range(n))
        self.nets: list[NetUnit] = [
            self._build_unit(
                self.layout.actor_dims[i],
                self.layout.critic_dim,
                spec.action_spaces[i],
                seed + 1009 * k,
            )
            for k, i in enumerate(owners)
        ]
        groups = groups_of(spec)
        self.trained_on: list[list[int]] = []
        for k in range(len(self.nets)):
            mine = [i for i in range(n) if self.net_of_agent[i] == k]
            if config.experience_sharing:
                mates = [j for j in range(n) if groups[j] == groups[mine[0]] and j not in mine]
                mine += mates
            self.trained_on.append(mine)
        self.version = 0
        self.env_steps = 0
        self.total_env_steps: int | None = None
        self._reducer: SumReducer | None = None

    def _build_unit(
        self, actor_dim: int, critic_dim: int, action_space: SpaceSpec, seed: int
    ) -> NetUnit:
        """The learner of one network over ``[actor_dim + critic_dim]`` layout rows."""
        box = SpaceSpec("box", (actor_dim,), "float32")
        unit: NetUnit = self.unit_learner(self.config, box, action_space, seed)
        use_layout_network(unit, self.config, actor_dim, critic_dim, action_space)
        return unit

    @property
    def reducer(self) -> SumReducer | None:
        """Set when several learners train the team together: every network's gradients
        are averaged across them, network by network in the same order everywhere."""
        return self._reducer

    @reducer.setter
    def reducer(self, reducer: SumReducer | None) -> None:
        self._reducer = reducer
        for unit in self.nets:
            unit.reducer = reducer

    def rollout_policy(self) -> NetSampler:
        """Behaviour policy over every agent, reading the current parameters."""
        return NetSampler([u.net for u in self.nets], self.net_of_agent)

    def networks(self) -> torch.nn.ModuleList:
        """Every network, in one module (what a distributed learner broadcasts)."""
        return torch.nn.ModuleList([u.net for u in self.nets])

    def agent_policies(self) -> list[Policy]:
        """One actor-only policy per agent, for evaluation and serving."""
        return [
            ActorPolicy(self.nets[k].net, self.spec.action_spaces[i])
            for i, k in enumerate(self.net_of_agent)
        ]

    def update(self, trajectories: Sequence[Trajectory]) -> dict[str, float]:
        """One update of every network on its agents' rows; bumps :attr:`version`."""
        steps = int(trajectories[0].valid.size)
        totals: dict[str, float] = {}
        for k, (unit, agents) in enumerate(zip(self.nets, self.trained_on, strict=True)):
            unit.env_steps = self.env_steps * len(agents)
            unit.total_env_steps = (
                None if self.total_env_steps is None else self.total_env_steps * len(agents)
            )
            metrics = unit.update(concat_trajectories([trajectories[i] for i in agents]))
            if k == 0 and self._reducer is not None:
                # Several learners: the steps of every learner's batch, agreed by the
                # first network's update, so schedules stay identical everywhere.
                steps = (unit.env_steps - self.env_steps * len(agents)) // len(agents)
            for key, value in metrics.items():
                totals[key] = totals.get(key, 0.0) + value / len(self.nets)
        self.env_steps += steps
        self.version += 1
        return totals

    def state_dict(self) -> dict[str, Any]:
        """Every network's state and the counters."""
        return {
            "nets": [u.state_dict() for u in self.nets],
            "version": self.version,
            "env_steps": self.env_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore :meth:`state_dict`."""
        nets = state.get("nets")
        if not isinstance(nets, list) or len(nets) != len(self.nets):
            have = len(nets) if isinstance(nets, list) else "no"
            raise CheckpointError(
                f"checkpoint holds {have} networks but this configuration has {len(self.nets)}"
            )
        for unit, unit_state in zip(self.nets, nets, strict=True):
            unit.load_state_dict(unit_state)
        self.version = int(state.get("version", 0))
        self.env_steps = int(state.get("env_steps", 0))
