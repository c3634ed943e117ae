"""MAPPO: one shared actor over each agent's own observation, a centralised critic.

The critic reads the environment's global ``state()`` (every agent's observations
concatenated where the env has no state) plus the one-hot agent id; the actor reads
only the agent's own observation and id, so a trained team acts without the state.
See :mod:`fleetmind.algos.multiagent_ppo` for the update.

    fleetmind train mpe2/simple_spread_v3 --algo mappo --steps 200000
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetmind.algos.multiagent_ppo import MultiAgentPPOConfig, make_spec


@dataclass
class MAPPOConfig(MultiAgentPPOConfig):
    """Hyperparameters of MAPPO (shared actor, centralised critic by default)."""

    share_parameters: bool = True
    """One network for all agents (they must have identical spaces)."""
    centralized_critic: bool = True
    """Critic on the global state (or all observations), actors on their own (MAPPO)."""


SPEC = make_spec(
    "mappo",
    "Multi-agent PPO: shared actor, centralised critic on the global state",
    MAPPOConfig,
)
