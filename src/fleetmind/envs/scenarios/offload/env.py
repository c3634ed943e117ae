"""The offloading scenario as a PettingZoo parallel environment.

One agent per vehicle, named ``vehicle_<i>``. At every step each vehicle with a
new task chooses where it runs: ``Discrete(3)``, 0 local, 1 its serving edge
server, 2 the cloud (see :mod:`.simulator`); a vehicle without a task has its
action ignored. Observation of an agent (float32, every entry in ``[0, 1]``;
times ``x`` enter as ``x / (x + 0.5 s)``)::

    new task? (1) | its input bits, cycles, deadline / the largest of the task types (3)
    | own CPU queue, own radio queue (2, times) | uplink rate / (rate + 50 Mbit/s) (1)
    | serving edge server's last reported backlog (1, time; as stale as the report)
    | predicted completion time local, edge, cloud (3, times; see
      :meth:`OffloadSimulator.predicted_times`)
    | position / side of the area (2) | elapsed fraction of the episode (1)

Reward of an agent: minus the cost of its tasks that completed in the step
(completion time, plus ``miss_penalty_s`` per missed deadline, plus
``energy_weight`` per joule), times ``reward_scale``; ``team_reward_weight``
mixes in the fleet's mean. ``state()`` is every observation in agent order, each
edge server's true backlog (times) and the elapsed fraction, for centralised
critics. Episodes end by truncation after ``episode_steps``; the last step's
infos carry ``offload_metrics`` (see :mod:`.metrics`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from fleetmind.core.errors import InvalidInputError
from fleetmind.envs.scenarios.offload.config import OffloadConfig, validate
from fleetmind.envs.scenarios.offload.metrics import OffloadMetrics, metrics_from_totals
from fleetmind.envs.scenarios.offload.simulator import PLACES, OffloadSimulator
from fleetmind.envs.team import ParallelStep

OBS_DIM = 14
TIME_SCALE_S = 0.5
RATE_SCALE_BPS = 5e7


def squash(seconds: np.ndarray) -> np.ndarray:
    """Non-negative times mapped into ``[0, 1)``: ``x / (x + TIME_SCALE_S)``."""
    x = np.maximum(seconds, 0.0)
    out: np.ndarray = x / (x + TIME_SCALE_S)
    return out


class OffloadEnv(ParallelEnv[str, np.ndarray, int]):  # type: ignore[misc]  # untyped base
    """A fleet of vehicles placing their tasks on board, at the edge or in the cloud."""

    metadata: ClassVar[dict[str, Any]] = {
        "name": "fleetmind_offload_v0",
        "render_modes": [],
        "is_parallelizable": True,
    }

    def __init__(self, config: OffloadConfig | None = None, env_id: str = "offload") -> None:
        self.config = validate(config or OffloadConfig())
        self.env_id = env_id
        self.sim = OffloadSimulator(self.config)
        m, k = self.config.vehicles, self.config.edge_servers
        self.possible_agents = [f"vehicle_{i}" for i in range(m)]
        self.agents: list[str] = []
        self._index = {name: i for i, name in enumerate(self.possible_agents)}
        self._obs_space = gymnasium.spaces.Box(0.0, 1.0, (OBS_DIM,), np.float32)
        self._act_space = gymnasium.spaces.Discrete(len(PLACES))
        self.state_space = gymnasium.spaces.Box(0.0, 1.0, (OBS_DIM * m + k + 1,), np.float32)
        spread = 1.0 + self.config.size_spread
        self._bits_scale = float(self.sim.type_bits.max()) * spread
        self._cycles_scale = float(self.sim.type_cycles.max()) * spread
        self._deadline_scale = float(self.sim.type_deadline.max())
        self._obs = np.zeros((m, OBS_DIM), np.float32)
        self.render_mode = None

    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        """Same box for every agent."""
        return self._obs_space

    def action_space(self, agent: str) -> gymnasium.spaces.Discrete:
        """Same three places for every agent."""
        return self._act_space

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """New positions, empty queues; ``seed`` fixes the whole episode."""
        self.sim.reset(np.random.default_rng(seed))
        self.agents = list(self.possible_agents)
        self._observe()
        return self._split(), {a: {} for a in self.agents}

    def step(self, actions: dict[str, int]) -> ParallelStep:
        """Place every new task as its vehicle asks and advance ``step_s`` seconds."""
        if not self.agents:
            raise InvalidInputError("offload env: step() after the episode ended; call reset()")
        cost = self.sim.step(self._action_array(actions))
        self._observe()
        rewards = self._rewards(cost)
        done = self.sim.done
        agents = self.agents
        observations = self._split()
        reward_dict = {a: float(r) for a, r in zip(agents, rewards, strict=True)}
        infos: dict[str, dict[str, Any]] = {a: {} for a in agents}
        if done:
            summary = self.offload_metrics().to_dict()
            for info in infos.values():
                info["offload_metrics"] = summary
            self.agents = []
        terminations = dict.fromkeys(agents, False)
        truncations = dict.fromkeys(agents, done)
        return observations, reward_dict, terminations, truncations, infos

    def offload_metrics(self) -> OffloadMetrics:
        """Measures of the episode so far (see :mod:`.metrics`)."""
        return metrics_from_totals(self.sim.totals)

    def state(self) -> np.ndarray:
        """Every observation in agent order, true edge backlogs, elapsed fraction."""
        backlog = squash(self.sim.backlog())
        out = np.concatenate([self._obs.ravel(), backlog, np.array([self._elapsed()])])
        return out.astype(np.float32)

    def render(self) -> None:
        """No rendering; use ``state()`` or :meth:`offload_metrics`."""
        return None

    def close(self) -> None:
        """Nothing to release."""
        return None

    def _action_array(self, actions: dict[str, int]) -> np.ndarray:
        out = np.zeros(self.config.vehicles, np.int64)
        for agent, action in actions.items():
            index = self._index.get(agent)
            if index is None:
                raise InvalidInputError(
                    f"offload env: unknown agent {agent!r}; agents are named vehicle_<i>"
                )
            try:
                place = int(action)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(
                    f"offload env: action {action!r} of {agent!r} is not a place number"
                ) from exc
            if not 0 <= place < len(PLACES):
                raise InvalidInputError(
                    f"offload env: action {place} of {agent!r} is not a place; use 0 (local), "
                    "1 (edge) or 2 (cloud)"
                )
            out[index] = place
        return out

    def _elapsed(self) -> float:
        return min(self.sim.steps / self.config.episode_steps, 1.0)

    def _observe(self) -> None:
        sim, obs = self.sim, self._obs
        obs[:, 0] = sim.has_task
        obs[:, 1] = sim.bits / self._bits_scale
        obs[:, 2] = sim.cycles / self._cycles_scale
        obs[:, 3] = sim.deadline / self._deadline_scale
        obs[:, 4] = squash(sim.local_free - sim.now)
        obs[:, 5] = squash(sim.radio_free - sim.now)
        rate = sim.serving_rate()
        obs[:, 6] = rate / (rate + RATE_SCALE_BPS)
        obs[:, 7] = squash(sim.reported_backlog[sim.serving])
        obs[:, 8:11] = squash(sim.predicted_times())
        obs[:, 11:13] = sim.positions / self.config.area_m
        obs[:, 13] = self._elapsed()

    def _split(self) -> dict[str, np.ndarray]:
        return {a: self._obs[self._index[a]].copy() for a in self.agents}

    def _rewards(self, cost: np.ndarray) -> np.ndarray:
        weight = self.config.team_reward_weight
        mixed = (1.0 - weight) * cost + weight * cost.mean()
        out: np.ndarray = -mixed * self.config.reward_scale
        return out
