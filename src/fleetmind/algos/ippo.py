"""Independent PPO: every agent learns with its own actor-critic on its own data.

With ``--ippo.share-parameters true`` the agents share one network instead (agent id
appended to the observation); with ``--ippo.experience-sharing true`` each agent's
network also learns from its group-mates' transitions. See
:mod:`fleetmind.algos.multiagent_ppo` for the update.

    fleetmind train mpe2/simple_spread_v3 --algo ippo --steps 200000
"""

from __future__ import annotations

from dataclasses import dataclass

from fleetmind.algos.multiagent_ppo import MultiAgentPPOConfig, make_spec


@dataclass
class IPPOConfig(MultiAgentPPOConfig):
    """Hyperparameters of independent PPO (one network per agent, local critics)."""

    share_parameters: bool = False
    """One network for all agents (they must have identical spaces)."""
    centralized_critic: bool = False
    """Critic on the global state (or all observations), actors on their own (MAPPO)."""


SPEC = make_spec(
    "ippo",
    "Independent PPO per agent (optionally shared parameters or shared experience)",
    IPPOConfig,
)
