"""Which algorithms train which environments, checked before a run starts.

A single-agent algorithm trains a Gymnasium env (a team of one) or a scenario with
a single-agent form (traffic: every signal a slot of one vector env, one shared
policy); a team algorithm (MAPPO, IPPO, team IMPALA) trains a multi-agent env.
"""

from __future__ import annotations

from typing import Any

from fleetmind.algos.base import AlgoSpec
from fleetmind.algos.team.base import MultiAgentAlgoSpec
from fleetmind.core.errors import ConfigError
from fleetmind.envs.registry import lookup_env, make_team_vector_env
from fleetmind.runtime.config import TrainConfig

SINGLE_AGENT_TWIN = {"team-impala": "impala"}
"""The single-agent algorithm to suggest for a team one on a single-agent env (else ppo)."""


def check_pairing(config: TrainConfig, spec: AlgoSpec) -> MultiAgentAlgoSpec | None:
    """The multi-agent spec when env and algorithm are both multi-agent; None when both
    are single-agent; ConfigError when they do not match."""
    entry = lookup_env(config.env_id)
    multi_env = entry.is_team
    if isinstance(spec, MultiAgentAlgoSpec):
        if not multi_env:
            single = SINGLE_AGENT_TWIN.get(spec.name, "ppo")
            raise ConfigError(
                f"{spec.name} trains multi-agent (PettingZoo) environments and "
                f"{config.env_id} is single-agent; use --algo {single}"
            )
        return spec
    if multi_env and not entry.has_single_agent_form:
        use = (
            "--algo team-impala (V-trace per agent network)"
            if spec.name == "impala"
            else "--algo mappo (shared actor, centralised critic) or --algo ippo "
            "(independent learners)"
        )
        raise ConfigError(
            f"{spec.name} is a single-agent algorithm and {config.env_id} is a multi-agent "
            f"environment; use {use}"
        )
    return None


def preflight(config: TrainConfig, spec: AlgoSpec, algo_cfg: Any) -> None:
    """Raise the env/algorithm mismatch errors before a run directory is created."""
    team_spec = check_pairing(config, spec)
    if team_spec is None:
        return
    env = make_team_vector_env(config.env_id, 1)
    try:
        team_spec.build_team(algo_cfg, env.spec, config.seed)  # checks spaces and switches
    finally:
        env.close()
