"""A small cooperative Markov game: agents must agree on a signalled choice.

Every step a target in ``0..choices-1`` is drawn. Each agent sees the target one-hot
and the previous joint action, and picks one of ``choices`` actions. Every agent
receives the team reward: ``1`` when all picked the target, ``0.5 / N`` per agent
that did otherwise. Episodes last ``horizon`` steps (truncation). The global state
is the target plus every agent's previous action.

It learns in a few thousand steps, which makes it the multi-agent smoke test of
fleetmind::

    fleetmind train fleetmind/coordination-v0 --algo mappo --steps 20000

``ENTRIES`` registers ``fleetmind/coordination-v0`` (2 agents, 3 choices) and
``fleetmind/coordination-large-v0`` (4 agents, 5 choices).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv

from fleetmind.envs.env_entry import EnvEntry, team_entry
from fleetmind.envs.team import ParallelStep

FAMILY = "fleetmind scenario"


class CoordinationEnv(ParallelEnv[str, np.ndarray, int]):  # type: ignore[misc]
    """``agents`` players, ``choices`` actions, ``horizon`` steps per episode."""

    metadata = {"name": "coordination_v0", "render_modes": []}  # noqa: RUF012

    def __init__(self, agents: int = 2, choices: int = 3, horizon: int = 10) -> None:
        self.possible_agents = [f"agent_{i}" for i in range(agents)]
        self.agents: list[str] = []
        self.choices = choices
        self.horizon = horizon
        obs_dim = choices * (1 + agents)
        box = spaces.Box(0.0, 1.0, (obs_dim,), np.float32)
        self.observation_spaces = dict.fromkeys(self.possible_agents, box)
        self.action_spaces = {a: spaces.Discrete(choices) for a in self.possible_agents}
        self.state_space = box
        self._rng = np.random.default_rng()
        self._target = 0
        self._last = np.zeros(agents, dtype=np.int64)
        self._t = 0

    def observation_space(self, agent: str) -> spaces.Box:
        """Space of ``agent``'s observation."""
        space: spaces.Box = self.observation_spaces[agent]
        return space

    def action_space(self, agent: str) -> spaces.Discrete:
        """Space of ``agent``'s action."""
        space: spaces.Discrete = self.action_spaces[agent]
        return space

    def state(self) -> np.ndarray:
        """Target one-hot followed by each agent's previous action one-hot."""
        out = np.zeros((1 + len(self.possible_agents), self.choices), dtype=np.float32)
        out[0, self._target] = 1.0
        out[np.arange(1, len(self._last) + 1), self._last] = 1.0
        return out.reshape(-1)

    def _observations(self) -> dict[str, np.ndarray]:
        state = self.state()
        return {a: state.copy() for a in self.agents}

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Start an episode."""
        if seed is not None:
            self._rng = np.random.default_rng(seed)
        self.agents = list(self.possible_agents)
        self._t = 0
        self._last[:] = 0
        self._target = int(self._rng.integers(self.choices))
        return self._observations(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]) -> ParallelStep:
        """Score the joint action, draw the next target."""
        chosen = np.array([int(actions[a]) for a in self.possible_agents])
        hits = chosen == self._target
        team = 1.0 if hits.all() else 0.5 * float(hits.sum()) / len(hits)
        self._last = chosen
        self._t += 1
        self._target = int(self._rng.integers(self.choices))
        done = self._t >= self.horizon
        obs = self._observations()
        rewards = dict.fromkeys(self.agents, team)
        terminated = dict.fromkeys(self.agents, False)
        truncated = dict.fromkeys(self.agents, done)
        infos: dict[str, dict[str, Any]] = {a: {} for a in self.agents}
        if done:
            self.agents = []
        return obs, rewards, terminated, truncated, infos


def parallel_env(**kwargs: Any) -> CoordinationEnv:
    """A :class:`CoordinationEnv` (keyword arguments as its constructor)."""
    return CoordinationEnv(**kwargs)


ENTRIES: tuple[EnvEntry, ...] = (
    team_entry(
        "fleetmind/coordination-large-v0",
        parallel_env,
        family=FAMILY,
        kwargs={"agents": 4, "choices": 5, "horizon": 10},
    ),
    team_entry("fleetmind/coordination-v0", parallel_env, family=FAMILY),
)
"""The coordination ids, as teams (they have no single-agent form)."""
