"""PettingZoo parallel environments behind one vectorised multi-agent interface.

A :class:`MultiAgentVectorEnv` steps ``E`` copies of a PettingZoo ``ParallelEnv``
together. Agents are a fixed list (the env's ``possible_agents``); every array is
indexed by copy and agent position::

    env = MultiAgentVectorEnv([make_copy for _ in range(E)])
    step = env.reset(seed=0)            # step.obs[i]: [E, D_i] for agent i
    while ...:
        step = env.step([actions_0, ..., actions_{N-1}])   # actions_i: [E, ...]
        step.rewards, step.terminated, step.truncated      # [E, N]
        step.active                                        # [E, N]: agent acted
        step.state                                         # [E, S] or None

Observations are flattened to float32 vectors (Discrete ones one-hot). An agent
that leaves its episode early reads zeros and is marked inactive until the copy
resets. A copy whose agents have all left uses next-step autoreset, like
Gymnasium's vector envs: the following :meth:`step` ignores its actions, resets it,
and reports ``reset_now`` for it (the observations are then the first ones of the
new episode).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from gymnasium import spaces

from fleetmind.core.errors import ConfigError, EnvironmentStepError
from fleetmind.core.spaces import SpaceSpec
from fleetmind.envs.spaces import space_spec

ParallelEnvFactory = Callable[[], Any]

ParallelStep = tuple[
    dict[str, np.ndarray],
    dict[str, float],
    dict[str, bool],
    dict[str, bool],
    dict[str, dict[str, Any]],
]
"""What a PettingZoo parallel env's ``step`` returns: observations, rewards,
terminations, truncations and infos, each keyed by agent."""
"""Builds one PettingZoo ``ParallelEnv`` copy."""


@dataclass(frozen=True)
class MultiAgentSpec:
    """The agents of a multi-agent env and their spaces."""

    agents: tuple[str, ...]
    """Agent names in a fixed order (the env's ``possible_agents``)."""
    observation_spaces: tuple[SpaceSpec, ...]
    """Flat box space of each agent's observation vector, in agent order."""
    action_spaces: tuple[SpaceSpec, ...]
    """Action space of each agent, in agent order."""
    state_space: SpaceSpec | None
    """Flat box space of the global ``state()``, or None when the env has none."""

    @property
    def homogeneous(self) -> bool:
        """True when every agent has the same observation and action space."""
        return len(set(self.observation_spaces)) == 1 and len(set(self.action_spaces)) == 1

    def to_json(self) -> dict[str, Any]:
        """JSON-compatible description (checkpoints store it)."""
        return {
            "agents": list(self.agents),
            "observation": [s.to_json() for s in self.observation_spaces],
            "action": [s.to_json() for s in self.action_spaces],
            "state": None if self.state_space is None else self.state_space.to_json(),
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> MultiAgentSpec:
        """Inverse of :meth:`to_json`."""
        state = data.get("state")
        return cls(
            agents=tuple(str(a) for a in data["agents"]),
            observation_spaces=tuple(SpaceSpec.from_json(s) for s in data["observation"]),
            action_spaces=tuple(SpaceSpec.from_json(s) for s in data["action"]),
            state_space=None if state is None else SpaceSpec.from_json(state),
        )


@dataclass
class MultiAgentStep:
    """What one vector step (or reset) returns; agent axis in ``spec.agents`` order."""

    obs: list[np.ndarray]
    """Per agent: ``[E, D_i]`` float32 observation vectors (zeros when inactive)."""
    rewards: np.ndarray
    """``[E, N]`` rewards of this step."""
    terminated: np.ndarray
    """``[E, N]``: the agent's episode ended in a terminal state at this step."""
    truncated: np.ndarray
    """``[E, N]``: the agent's episode was cut off (time limit) at this step."""
    active: np.ndarray
    """``[E, N]``: the agent took part in this step (its action was used)."""
    reset_now: np.ndarray
    """``[E]``: the copy was reset by this call; its actions were ignored."""
    episode_end: np.ndarray
    """``[E]``: the copy's episode ended at this step (every agent has left)."""
    state: np.ndarray | None
    """``[E, S]`` global state after the step, or None."""
    decision: np.ndarray | None = None
    """``[E, N]``: the agent's next action is a real choice (False while it is locked,
    a traffic signal inside its minimum green); None when the env reports no locks."""


def _flatten_space(space: Any, what: str) -> SpaceSpec:
    if isinstance(space, spaces.Discrete):
        n = int(space.n)
        return SpaceSpec("box", (n,), "float32", low=(0.0,) * n, high=(1.0,) * n)
    if isinstance(space, spaces.Box):
        spec = space_spec(space)
        dim = spec.flat_dim
        return SpaceSpec("box", (dim,), "float32", low=spec.low, high=spec.high)
    raise ConfigError(f"{what} space {space} is not supported; use a Box or Discrete space")


def _flatten_value(space: Any, value: Any) -> np.ndarray:
    if isinstance(space, spaces.Discrete):
        out = np.zeros(int(space.n), dtype=np.float32)
        out[int(value) - int(space.start)] = 1.0
        return out
    return np.asarray(value, dtype=np.float32).reshape(-1)


def describe(env: Any) -> MultiAgentSpec:
    """The :class:`MultiAgentSpec` of one ParallelEnv copy (its spaces are checked)."""
    agents = tuple(str(a) for a in env.possible_agents)
    if not agents:
        raise ConfigError("the multi-agent environment has no agents")
    obs = tuple(_flatten_space(env.observation_space(a), f"observation of {a}") for a in agents)
    acts: list[SpaceSpec] = []
    for agent in agents:
        space = env.action_space(agent)
        if not isinstance(space, spaces.Discrete | spaces.Box):
            raise ConfigError(
                f"action space of {agent} is {space}; multi-agent training supports Discrete "
                "and Box action spaces"
            )
        acts.append(space_spec(space))
    state_space = getattr(env, "state_space", None)
    state = _flatten_space(state_space, "state") if state_space is not None else None
    return MultiAgentSpec(agents, obs, tuple(acts), state)


class MultiAgentVectorEnv:
    """``E`` copies of a PettingZoo parallel env stepped together."""

    def __init__(self, factories: Sequence[ParallelEnvFactory], env_id: str = "") -> None:
        if not factories:
            raise ConfigError("number of environments must be positive, got 0")
        self.env_id = env_id
        self.envs = [make() for make in factories]
        self.spec = describe(self.envs[0])
        self.num_envs = len(self.envs)
        self.agents = self.spec.agents
        self._obs_spaces = [self.envs[0].observation_space(a) for a in self.agents]
        self._index = {a: i for i, a in enumerate(self.agents)}
        self._pending_reset = np.zeros(self.num_envs, dtype=bool)
        self._seed: int | None = None

    @property
    def num_agents(self) -> int:
        """Number of agents N."""
        return len(self.agents)

    def _blank(self) -> MultiAgentStep:
        e, n = self.num_envs, self.num_agents
        return MultiAgentStep(
            obs=[np.zeros((e, s.flat_dim), np.float32) for s in self.spec.observation_spaces],
            rewards=np.zeros((e, n), np.float32),
            terminated=np.zeros((e, n), bool),
            truncated=np.zeros((e, n), bool),
            active=np.zeros((e, n), bool),
            reset_now=np.zeros(e, bool),
            episode_end=np.zeros(e, bool),
            state=None
            if self.spec.state_space is None
            else np.zeros((e, self.spec.state_space.flat_dim), np.float32),
        )

    def _write_obs(self, out: MultiAgentStep, e: int, obs: dict[Any, Any]) -> None:
        for i, agent in enumerate(self.agents):
            if agent in obs:
                out.obs[i][e] = _flatten_value(self._obs_spaces[i], obs[agent])

    def _reset_copy(self, out: MultiAgentStep, e: int, seed: int | None) -> None:
        obs, _ = self.envs[e].reset(seed=seed)
        self._write_obs(out, e, obs)
        out.reset_now[e] = True
        self._pending_reset[e] = False

    def _write_state(self, out: MultiAgentStep) -> None:
        if out.state is not None:
            for e, env in enumerate(self.envs):
                out.state[e] = np.asarray(env.state(), dtype=np.float32).reshape(-1)

    def reset(self, seed: int | None = None) -> MultiAgentStep:
        """Reset every copy (copy ``e`` gets ``seed + e``)."""
        out = self._blank()
        for e in range(self.num_envs):
            self._reset_copy(out, e, None if seed is None else seed + e)
        self._write_state(out)
        return out

    def step(self, actions: Sequence[np.ndarray]) -> MultiAgentStep:
        """Apply one action per agent per copy (``actions[i]`` is ``[E, ...]``)."""
        if len(actions) != self.num_agents:
            raise ConfigError(f"expected actions for {self.num_agents} agents, got {len(actions)}")
        out = self._blank()
        for e, env in enumerate(self.envs):
            if self._pending_reset[e]:
                self._reset_copy(out, e, None)
                continue
            live = self._known(list(env.agents), e, "acting")
            index = self._index
            joint = {
                a: _env_action(self.spec.action_spaces[index[a]], actions[index[a]][e])
                for a in live
            }
            try:
                obs, rew, term, trunc, _ = env.step(joint)
            except Exception as exc:  # the env is user code: report which copy failed
                raise EnvironmentStepError(
                    f"environment {self.env_id or type(env).__name__} copy {e} failed to step: "
                    f"{exc}"
                ) from exc
            self._known(list(obs), e, "observed")
            self._write_obs(out, e, obs)
            for a in live:
                i = index[a]
                out.active[e, i] = True
                out.rewards[e, i] = float(rew.get(a, 0.0))
                out.terminated[e, i] = bool(term.get(a, False))
                out.truncated[e, i] = bool(trunc.get(a, False)) and not out.terminated[e, i]
            if not env.agents:
                self._pending_reset[e] = True
                out.episode_end[e] = True
        self._write_state(out)
        return out

    def _known(self, agents: list[Any], copy: int, what: str) -> list[Any]:
        """``agents`` when each is one of the env's ``possible_agents``; else a clear error."""
        unknown = [a for a in agents if a not in self._index]
        if unknown:
            raise EnvironmentStepError(
                f"environment {self.env_id or type(self.envs[copy]).__name__} copy {copy} has "
                f"{what} agents {unknown} that are not among its possible_agents "
                f"{list(self.agents)}; a parallel env's agents must all be declared in "
                "possible_agents"
            )
        return agents

    def close(self) -> None:
        """Close every copy."""
        for env in self.envs:
            close = getattr(env, "close", None)
            if callable(close):
                close()


def _env_action(space: SpaceSpec, action: np.ndarray) -> Any:
    if space.kind == "discrete":
        return int(action)
    return np.asarray(action, dtype=space.dtype).reshape(space.shape)
