"""A trained team: one :class:`fleetmind.core.Agent` per agent, acting on its own
observation, restored from a multi-agent run directory.

team = load_team("runs/spread").team
actions = team.act({"agent_0": obs0, "agent_1": obs1, "agent_2": obs2})
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fleetmind.algos.loading import actuator_for, read_checkpoint
from fleetmind.algos.registry import get_algorithm
from fleetmind.algos.team.base import MultiAgentAlgoSpec
from fleetmind.config import config_from_mapping
from fleetmind.core.agent import Agent
from fleetmind.core.errors import CheckpointError, InvalidInputError, UnknownNameError
from fleetmind.core.learning import InputBuilder
from fleetmind.core.normalizer import ObservationNormalizer, RunningMeanStd
from fleetmind.envs.team import MultiAgentSpec


class TeamAgent:
    """Per-agent :class:`Agent` objects behind one ``act`` over a dict of observations."""

    def __init__(self, agents: Mapping[str, Agent]) -> None:
        self.agents = dict(agents)
        """Agent name -> its Agent (raw flat observation in, env action out)."""

    @property
    def names(self) -> list[str]:
        """Agent names in the env's order."""
        return list(self.agents)

    def _check(self, observations: Mapping[str, np.ndarray]) -> None:
        unknown = sorted(set(observations) - set(self.agents))
        if unknown:
            raise InvalidInputError(
                f"observations for unknown agents {unknown}; the team is {self.names}"
            )

    def act_batch(
        self, observations: Mapping[str, np.ndarray], deterministic: bool = True
    ) -> dict[str, np.ndarray]:
        """Env actions for ``{agent: [B, D]}`` observations (any subset of the agents)."""
        self._check(observations)
        return {
            name: self.agents[name].act_batch(obs, deterministic)
            for name, obs in observations.items()
        }

    def act(
        self, observations: Mapping[str, np.ndarray], deterministic: bool = True
    ) -> dict[str, np.ndarray]:
        """The env action of each agent for one observation per agent."""
        self._check(observations)
        return {
            name: self.agents[name].act(obs, deterministic) for name, obs in observations.items()
        }


class _Perceive:
    """Normalise (when trained with normalisation) then build the actor input."""

    def __init__(
        self, layout: InputBuilder | None, index: int, stats: RunningMeanStd | None
    ) -> None:
        self.layout = layout
        self.index = index
        self.normalize = ObservationNormalizer(stats) if stats is not None else None

    def __call__(self, obs: np.ndarray) -> np.ndarray:
        x = self.normalize(obs) if self.normalize is not None else obs
        return x if self.layout is None else self.layout.actor_input(self.index, x)


@dataclass
class LoadedTeam:
    """A team restored from a checkpoint, with what the checkpoint says about it."""

    team: TeamAgent
    """The agents."""
    algo: str
    """Algorithm that trained it."""
    env_id: str
    """Environment it was trained on."""
    version: int
    """Policy version (updates applied)."""
    env_steps: int
    """Joint environment steps it was trained for."""
    spec: MultiAgentSpec
    """Agents and spaces."""
    checkpoint: Path
    """The checkpoint file it came from."""


def is_team_checkpoint(state: Mapping[str, object]) -> bool:
    """True when ``state`` was written by a multi-agent run."""
    try:
        return isinstance(get_algorithm(str(state.get("algo", ""))), MultiAgentAlgoSpec)
    except UnknownNameError:
        return False


def team_from_state(state: dict[str, object], ckpt: Path) -> LoadedTeam:
    """Build the team recorded in a loaded checkpoint ``state``."""
    try:
        algo = str(state["algo"])
        config = json.loads(str(state["config"]))
        spec = MultiAgentSpec.from_json(json.loads(str(state["spaces"]))["team"])
    except (KeyError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {ckpt} lacks its team description: {exc}") from exc
    algo_spec = get_algorithm(algo)
    if not isinstance(algo_spec, MultiAgentAlgoSpec):
        raise CheckpointError(f"checkpoint {ckpt} was not written by a multi-agent algorithm")
    algo_cfg: object = config_from_mapping(algo_spec.config_cls, config.get(algo, {}), algo)
    learner = algo_spec.build_team(algo_cfg, spec, 0)
    try:
        learner.load_state_dict(state["learner"])  # type: ignore[arg-type]
    except (KeyError, RuntimeError, TypeError) as exc:
        raise CheckpointError(f"checkpoint {ckpt} does not fit its networks: {exc}") from exc
    from fleetmind.algos.checkpoint import stats_from_state

    normalizers = state.get("normalizers", {})
    if not isinstance(normalizers, dict):
        raise CheckpointError(f"checkpoint {ckpt} has malformed normalisers")
    agents: dict[str, Agent] = {}
    for i, (name, policy) in enumerate(zip(spec.agents, learner.agent_policies(), strict=True)):
        obs_space = spec.observation_spaces[i]
        stats = (
            stats_from_state(normalizers[name], obs_space.shape) if name in normalizers else None
        )
        agents[name] = Agent(
            policy,
            obs_space,
            spec.action_spaces[i],
            _Perceive(learner.layout, i, stats),
            actuator_for(spec.action_spaces[i]),
        )
    return LoadedTeam(
        team=TeamAgent(agents),
        algo=algo,
        env_id=str(state.get("env_id", config.get("env_id", ""))),
        version=int(state.get("version", 0)),  # type: ignore[call-overload]
        env_steps=int(state.get("env_steps", 0)),  # type: ignore[call-overload]
        spec=spec,
        checkpoint=ckpt,
    )


def load_team(path: str | Path) -> LoadedTeam:
    """Load the latest checkpoint of a multi-agent run directory (or one checkpoint)."""
    state, ckpt = read_checkpoint(Path(path))
    return team_from_state(state, ckpt)


def load_policy(path: str | Path) -> Agent | TeamAgent:
    """The agent of a single-agent run, or the team of a multi-agent one."""
    state, ckpt = read_checkpoint(Path(path))
    if is_team_checkpoint(state):
        return team_from_state(state, ckpt).team
    from fleetmind.algos.loading import load_agent

    return load_agent(path).agent
