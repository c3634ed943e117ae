"""Tiny deterministic PettingZoo parallel games for the multi-agent tests."""

from __future__ import annotations

from typing import Any

import numpy as np
from gymnasium import spaces
from pettingzoo import ParallelEnv


class LeavingGame(ParallelEnv):  # type: ignore[misc]
    """Two agents; ``quitter`` terminates after step 1, ``stayer`` after step 3.

    Observations are ``[t]``; rewards are 1 (stayer) and 10 (quitter) per step; the
    global state is ``[t, actions summed so far]``.
    """

    metadata = {"name": "leaving_v0"}  # noqa: RUF012

    def __init__(self) -> None:
        self.possible_agents = ["stayer", "quitter"]
        self.agents: list[str] = []
        self.state_space = spaces.Box(-100, 100, (2,), np.float32)
        self.t = 0
        self.total = 0

    def observation_space(self, agent: str) -> spaces.Box:
        return spaces.Box(-100, 100, (1,), np.float32)

    def action_space(self, agent: str) -> spaces.Discrete:
        return spaces.Discrete(2)

    def state(self) -> np.ndarray:
        return np.array([self.t, self.total], dtype=np.float32)

    def reset(self, seed: int | None = None, options: Any = None) -> Any:
        self.agents = list(self.possible_agents)
        self.t = 0
        self.total = 0
        return {a: np.array([0.0], np.float32) for a in self.agents}, {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]) -> Any:
        self.t += 1
        self.total += sum(int(v) for v in actions.values())
        obs = {a: np.array([self.t], np.float32) for a in self.agents}
        rew = {a: 1.0 if a == "stayer" else 10.0 for a in self.agents}
        term = {a: (a == "quitter" and self.t >= 1) or self.t >= 3 for a in self.agents}
        trunc = dict.fromkeys(self.agents, False)
        self.agents = [a for a in self.agents if not term[a]]
        return obs, rew, term, trunc, {a: {} for a in obs}


class MixedGame(ParallelEnv):  # type: ignore[misc]
    """A discrete-action agent with a Discrete observation and a continuous-action one.

    Reward: ``-(a_pilot - 0.5)^2`` to both, plus 1 when the switch picks 1. Four steps,
    then truncation. No global state.
    """

    metadata = {"name": "mixed_v0"}  # noqa: RUF012

    def __init__(self) -> None:
        self.possible_agents = ["switch_0", "pilot_0"]
        self.agents: list[str] = []
        self.t = 0

    def observation_space(self, agent: str) -> spaces.Space[Any]:
        if agent == "switch_0":
            return spaces.Discrete(4)
        return spaces.Box(-1.0, 1.0, (2, 2), np.float32)

    def action_space(self, agent: str) -> spaces.Space[Any]:
        if agent == "switch_0":
            return spaces.Discrete(2)
        return spaces.Box(-1.0, 1.0, (1,), np.float32)

    def _obs(self) -> dict[str, Any]:
        return {"switch_0": self.t % 4, "pilot_0": np.full((2, 2), self.t / 4, np.float32)}

    def reset(self, seed: int | None = None, options: Any = None) -> Any:
        self.agents = list(self.possible_agents)
        self.t = 0
        return self._obs(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, Any]) -> Any:
        self.t += 1
        pilot = float(np.asarray(actions["pilot_0"]).reshape(-1)[0])
        reward = -((pilot - 0.5) ** 2) + float(int(actions["switch_0"]) == 1)
        done = self.t >= 4
        obs = self._obs()
        rew = dict.fromkeys(self.agents, reward)
        term = dict.fromkeys(self.agents, False)
        trunc = dict.fromkeys(self.agents, done)
        if done:
            self.agents = []
        return obs, rew, term, trunc, {a: {} for a in obs}


class ShiftingGame(LeavingGame):
    """LeavingGame whose agent list gains an undeclared ``newcomer`` after a step."""

    metadata = {"name": "shifting_v0"}  # noqa: RUF012

    def step(self, actions: dict[str, int]) -> Any:
        result = super().step(actions)
        self.agents = [*self.agents, "newcomer"]
        return result
