"""MAPPO: one shared actor over each agent's own observation, a centralised critic.

The critic reads the environment's global ``state()`` (every agent's observations
concatenated where the env has no state) plus the one-hot agent id; the actor reads
only the agent's own observation and id, so a trained team acts without the state.
See :mod:`fleetmind.algos.team.ppo` for the update.

    fleetmind train mpe2/simple_spread_v3 --algo mappo --steps 200000
"""

from __future__ import annotations

from fleetmind.algos.team.config import MAPPOConfig
from fleetmind.algos.team.ppo import make_spec

SPEC = make_spec(
    "mappo",
    "Multi-agent PPO: shared actor, centralised critic on the global state",
    MAPPOConfig,
)

__all__ = ["SPEC", "MAPPOConfig"]
