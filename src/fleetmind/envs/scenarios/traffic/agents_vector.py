"""Every signal of several traffic envs as one Gymnasium vector env.

Sub-environment ``copy * num_agents + j`` is agent ``j`` of copy ``copy``, so a
single-agent trainer (PPO, DQN) learns one policy shared by every signal:
independent learners with parameter sharing. All agents must have the same
observation and action spaces.

Autoreset follows Gymnasium's next-step mode, like every vector env of
fleetmind: the step after a copy's episode ended resets that copy, returns its
first observations with zero reward and ignores the actions.

When the agents' infos carry ``decision`` (False: the agent's next action can
change nothing, e.g. a signal inside its minimum green), the vector info holds
``decision`` (and Gymnasium's ``_decision`` presence mask), one flag per slot.

A copy whose simulator fails mid-episode (SUMO dying: EnvironmentStepError)
is restarted: its slots end truncated with their last observations, and the
next step starts a fresh episode.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
from gymnasium.vector.utils import batch_space

from fleetmind.core.errors import ConfigError, EnvironmentStepError

logger = logging.getLogger(__name__)

_SEED_RANGE = 2**31 - 1


class AgentsVectorEnv(gym.vector.VectorEnv[Any, Any, Any]):
    """``copies`` PettingZoo parallel envs flattened to ``copies * agents`` slots."""

    def __init__(self, make: Callable[[], Any], copies: int) -> None:
        if copies < 1:
            raise ConfigError(f"number of environments must be positive, got {copies}")
        self.envs = [make() for _ in range(copies)]
        first = self.envs[0]
        self.agent_names: list[str] = list(first.possible_agents)
        obs_space = first.observation_space(self.agent_names[0])
        act_space = first.action_space(self.agent_names[0])
        for agent in self.agent_names:
            if (
                first.observation_space(agent) != obs_space
                or first.action_space(agent) != act_space
            ):
                name = getattr(first, "env_id", "this env")
                raise ConfigError(
                    f"{name}: agent {agent!r} has other spaces than {self.agent_names[0]!r}; "
                    "shared-policy training needs identical agents"
                )
        self.num_agents = len(self.agent_names)
        self.num_envs = copies * self.num_agents
        self.single_observation_space = obs_space
        self.single_action_space = act_space
        self.observation_space = batch_space(obs_space, self.num_envs)
        self.action_space = batch_space(act_space, self.num_envs)
        self.metadata = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}
        self._obs = np.zeros((self.num_envs, *obs_space.shape), dtype=np.float32)
        self._needs_reset = np.zeros(copies, dtype=bool)
        self._decision = np.ones(self.num_envs, dtype=bool)
        self._reports_decisions = False
        self._seeds = np.random.default_rng()

    def reset(
        self, *, seed: int | list[int] | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        """Reset every copy; copy ``k`` gets ``seed + k``."""
        base = seed[0] if isinstance(seed, list) else seed
        self._seeds = np.random.default_rng(base)
        for k in range(len(self.envs)):
            self._reset_copy(k, None if base is None else base + k)
        return self._obs.copy(), self._info()

    def _reset_copy(self, k: int, seed: int | None) -> None:
        if seed is None:
            seed = int(self._seeds.integers(_SEED_RANGE))
        observations, infos = self.envs[k].reset(seed=seed)
        self._write(k, observations, infos)
        self._needs_reset[k] = False

    def _write(
        self, k: int, observations: dict[str, np.ndarray], infos: dict[str, dict[str, Any]]
    ) -> None:
        start = k * self.num_agents
        for j, agent in enumerate(self.agent_names):
            if agent in observations:
                self._obs[start + j] = observations[agent]
            info = infos.get(agent)
            if info and "decision" in info:
                self._decision[start + j] = bool(info["decision"])
                self._reports_decisions = True

    def _info(self) -> dict[str, Any]:
        if not self._reports_decisions:
            return {}
        return {"decision": self._decision.copy(), "_decision": np.ones(self.num_envs, bool)}

    def step(
        self, actions: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        """One step of every copy (or its autoreset)."""
        flat = np.asarray(actions).reshape(self.num_envs)
        rewards = np.zeros(self.num_envs, dtype=np.float64)
        terminated = np.zeros(self.num_envs, dtype=bool)
        truncated = np.zeros(self.num_envs, dtype=bool)
        for k, env in enumerate(self.envs):
            if self._needs_reset[k]:
                self._reset_copy(k, None)
                continue
            start = k * self.num_agents
            chosen = {a: int(flat[start + j]) for j, a in enumerate(self.agent_names)}
            try:
                observations, rew, term, trunc, infos = env.step(chosen)
            except EnvironmentStepError as exc:
                logger.warning("environment copy %d failed, restarting it: %s", k, exc)
                truncated[start : start + self.num_agents] = True
                self._needs_reset[k] = True
                self._decision[start : start + self.num_agents] = True
                continue
            self._write(k, observations, infos)
            for j, agent in enumerate(self.agent_names):
                rewards[start + j] = rew.get(agent, 0.0)
                terminated[start + j] = term.get(agent, False)
                truncated[start + j] = trunc.get(agent, False)
            self._needs_reset[k] = not env.agents
        return self._obs.copy(), rewards, terminated, truncated, self._info()

    def close_extras(self, **kwargs: Any) -> None:
        """Close every copy."""
        for env in self.envs:
            env.close()
