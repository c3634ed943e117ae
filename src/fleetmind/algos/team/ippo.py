"""Independent PPO: every agent learns with its own actor-critic on its own data.

With ``--ippo.share-parameters true`` the agents share one network instead (agent id
appended to the observation); with ``--ippo.experience-sharing true`` each agent's
network also learns from its group-mates' transitions. See
:mod:`fleetmind.algos.team.ppo` for the update.

    fleetmind train mpe2/simple_spread_v3 --algo ippo --steps 200000
"""

from __future__ import annotations

from fleetmind.algos.team.config import IPPOConfig
from fleetmind.algos.team.ppo import make_spec

SPEC = make_spec(
    "ippo",
    "Independent PPO per agent (optionally shared parameters or shared experience)",
    IPPOConfig,
)

__all__ = ["SPEC", "IPPOConfig"]
