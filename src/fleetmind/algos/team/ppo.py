"""Multi-agent PPO: independent learners, parameter sharing, MAPPO, shared experience.

One family, four switches (see :class:`MultiAgentPPOConfig`):

- ``share_parameters=false``: independent PPO, one actor-critic per agent (IPPO);
- ``share_parameters=true``: one actor-critic for all agents, the one-hot agent id
  appended to its inputs; every agent's transitions train it;
- ``centralized_critic=true``: MAPPO, the critic reads the global ``state()`` (or
  all observations concatenated) while each actor reads only its own observation;
- ``experience_sharing=true`` (separate networks only): each agent's network also
  learns from the transitions of the other agents of its group (same name prefix
  and spaces), as in Shared Experience Actor-Critic; PPO's ratio against the
  behaving agent's own log-probability is the importance weight, clipped as usual.

An update is plain PPO per network::

    for net, agents in networks:                      # which agents' data trains net
        trajectory = concat(trajectories[agents], axis=env)
        net_learner.update(trajectory)                # compute_gae + ppo_loss
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from fleetmind.algos.actor_critic.network import check_supported_action
from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.algos.ppo.learner import PPOLearner
from fleetmind.algos.team.base import MultiAgentAlgoSpec, multiagent_spec
from fleetmind.algos.team.config import MultiAgentPPOConfig
from fleetmind.algos.team.nets import ActorPolicy, InputLayout, NetSampler, SplitActorCritic
from fleetmind.core.agent import Policy
from fleetmind.core.batch import Trajectory, concat_trajectories
from fleetmind.core.errors import CheckpointError, ConfigError
from fleetmind.core.learning import SumReducer
from fleetmind.core.spaces import SpaceSpec
from fleetmind.envs.team import MultiAgentSpec


def check_team(config: MultiAgentPPOConfig, spec: MultiAgentSpec, algo: str) -> None:
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


class _NetLearner(PPOLearner):
    """PPO on one network whose inputs are :class:`InputLayout` rows."""

    def __init__(
        self,
        config: PPOConfig,
        actor_dim: int,
        critic_dim: int,
        action_space: SpaceSpec,
        seed: int,
    ) -> None:
        super().__init__(config, SpaceSpec("box", (actor_dim,), "float32"), action_space, seed)
        if critic_dim:
            self.net = SplitActorCritic(
                actor_dim,
                critic_dim,
                action_space,
                config.hidden_sizes,
                config.activation,
                config.init_log_std,
            )
            self._optimizer = None  # built over the split network on first use


class MultiAgentPPOLearner:
    """All agents' networks; see the module docstring for the update."""

    def __init__(self, config: MultiAgentPPOConfig, spec: MultiAgentSpec, seed: int, algo: str):
        config.validate()
        check_team(config, spec, algo)
        self.config = config
        self.spec = spec
        n = len(spec.agents)
        share = config.share_parameters
        self.layout = InputLayout(spec, share and config.agent_id, config.centralized_critic)
        self.net_of_agent = [0] * n if share else list(range(n))
        owners = [0] if share else list(range(n))
        self.nets = [
            _NetLearner(
                config,
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
        """One PPO update of every network; bumps :attr:`version`."""
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


def make_spec(name: str, summary: str, config_cls: type) -> MultiAgentAlgoSpec:
    """The registry entry of a multi-agent PPO variant with defaults ``config_cls``."""

    def build_team(config: Any, spec: MultiAgentSpec, seed: int) -> MultiAgentPPOLearner:
        return MultiAgentPPOLearner(config, spec, seed, name)

    return multiagent_spec(
        name,
        summary,
        config_cls,
        build_team,
        lambda cfg: int(cfg.rollout_steps),
        check_supported_action,
    )
