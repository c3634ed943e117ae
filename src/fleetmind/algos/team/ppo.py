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

from typing import Any

from fleetmind.algos.actor_critic.network import check_supported_action
from fleetmind.algos.ppo.learner import PPOLearner
from fleetmind.algos.team.base import MultiAgentAlgoSpec, multiagent_spec
from fleetmind.algos.team.config import MultiAgentPPOConfig
from fleetmind.algos.team.learner_base import TeamLearnerBase
from fleetmind.envs.team import MultiAgentSpec


class MultiAgentPPOLearner(TeamLearnerBase):
    """All agents' networks, each trained by PPO; see the module docstring."""

    config: MultiAgentPPOConfig

    unit_learner = PPOLearner


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
