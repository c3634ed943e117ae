"""The hyperparameters of the team algorithms (MAPPO, IPPO, team IMPALA): no torch, so
the CLI reads them without importing the networks.

Every team algorithm takes the same switches (:class:`TeamSwitches`: how agents share
networks and what the critic reads) on top of its single-agent hyperparameters.
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetmind.algos.impala.config import ImpalaConfig
from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.core.errors import ConfigError


@dataclass
class TeamSwitches:
    """How the agents of a team relate: networks, critic input, shared experience."""

    share_parameters: bool = True
    """One network for all agents (they must have identical spaces)."""
    centralized_critic: bool = True
    """Critic on the global state (or all observations), actors on their own (MAPPO)."""
    agent_id: bool = True
    """Append the one-hot agent id to the inputs of a shared network."""
    experience_sharing: bool = False
    """Separate networks also learn from their group-mates' transitions (SEAC-style)."""

    def check_switches(self) -> None:
        """ConfigError for contradictory switches."""
        if self.experience_sharing and self.share_parameters:
            raise ConfigError(
                "experience_sharing needs share_parameters=false: a shared network already "
                "learns from every agent's transitions"
            )


@dataclass
class MultiAgentPPOConfig(TeamSwitches, PPOConfig):
    """Hyperparameters of multi-agent PPO (the PPO ones, plus how agents relate)."""

    rollout_steps: int = 50
    """Steps per environment collected before each update (T)."""
    gamma: float = 0.99
    """Discount factor."""
    gae_lambda: float = 0.95
    """GAE lambda: bias/variance trade-off of advantage estimates."""
    ent_coef: float = 0.01
    """Weight of the entropy bonus."""

    def validate(self) -> None:
        """Raise ConfigError for values outside their domain or contradictory switches."""
        super().validate()
        self.check_switches()


@dataclass
class IPPOConfig(MultiAgentPPOConfig):
    """Hyperparameters of independent PPO (one network per agent, local critics)."""

    share_parameters: bool = False
    """One network for all agents (they must have identical spaces)."""
    centralized_critic: bool = False
    """Critic on the global state (or all observations), actors on their own (MAPPO)."""


@dataclass
class MAPPOConfig(MultiAgentPPOConfig):
    """Hyperparameters of MAPPO (shared actor, centralised critic by default)."""

    share_parameters: bool = True
    """One network for all agents (they must have identical spaces)."""
    centralized_critic: bool = True
    """Critic on the global state (or all observations), actors on their own (MAPPO)."""


@dataclass
class TeamImpalaConfig(TeamSwitches, ImpalaConfig):
    """Hyperparameters of team IMPALA (the IMPALA ones, plus how agents relate; by
    default MAPPO's shape: a shared actor and a centralised critic)."""

    gamma: float = 0.99
    """Discount factor."""

    def validate(self) -> None:
        """Raise ConfigError for values outside their domain or contradictory switches."""
        super().validate()
        self.check_switches()
