"""Team IMPALA: every network of a team learns with V-trace, so teams train from
asynchronous actors (``--mode async``) whose chunks lag the learner's policy.

The same switches as MAPPO and IPPO (:class:`TeamImpalaConfig`; by default one shared
actor with the agent id appended and a centralised critic). Per network, the rows of
the agents it trains on (its own; with ``experience_sharing`` also its group-mates')
are one IMPALA batch: V-trace weighs each step by ``pi(a|x) / mu(a|x)``, the
network's current probability of the action against the acting agent's behaviour
probability that the chunk carries, clipped at ``rho_bar``/``c_bar``::

    for net, agents in networks:
        trajectory = concat(trajectories[agents], axis=env)     # [T, sum E] rows
        net_learner.update(trajectory)                          # vtrace + actor-critic loss

Each agent's own rewards, episode ends and active mask drive its V-trace targets;
the critic reads the global state under ``centralized_critic``, as in MAPPO.

    fleetmind train mpe2/simple_spread_v3 --algo team-impala --actors 4 --mode async
"""

from __future__ import annotations

from typing import Any

from fleetmind.algos.actor_critic.network import check_supported_action
from fleetmind.algos.impala.learner import ImpalaLearner
from fleetmind.algos.team.base import multiagent_spec
from fleetmind.algos.team.config import TeamImpalaConfig
from fleetmind.algos.team.learner_base import TeamLearnerBase
from fleetmind.envs.team import MultiAgentSpec

NAME = "team-impala"
"""The algorithm's name on the command line (``--algo team-impala``)."""


class TeamImpalaLearner(TeamLearnerBase):
    """All agents' networks, each trained by V-trace; see the module docstring."""

    config: TeamImpalaConfig

    unit_learner = ImpalaLearner


def _build_team(config: Any, spec: MultiAgentSpec, seed: int) -> TeamImpalaLearner:
    return TeamImpalaLearner(config, spec, seed, NAME)


SPEC = multiagent_spec(
    NAME,
    "Team IMPALA: V-trace per agent network for asynchronous actors (--mode async)",
    TeamImpalaConfig,
    _build_team,
    lambda cfg: int(cfg.rollout_steps),
    check_supported_action,
)

__all__ = ["SPEC", "TeamImpalaConfig", "TeamImpalaLearner"]
