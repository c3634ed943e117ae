"""The built-in traffic simulator as a PettingZoo parallel environment.

One agent per intersection, named ``tl_<row>_<col>``. Observation of an agent
(float32, every entry in ``[0, 1]``)::

    phase one-hot (4) | time in phase / 60 (1) | may switch (1)
    | queue per incoming lane / road capacity (12)
    | approaching vehicles per incoming lane / road capacity (12)
    | neighbours' queue per approach (16, only with neighbour_obs)
    | approach comes from the network's border, N/E/S/W (4, only with border_obs)
    | upstream green queue per approach (4), arrivals in the next step per lane (12)
      (only with upstream_obs)
    | queued and approaching vehicles on the lanes of each phase (8, only with phase_obs)
    | elapsed episode fraction, demand multiplier / peak multiplier (2, only with time_obs)

Action: the phase to show next (``Discrete(4)``, see
:mod:`~fleetmind.envs.scenarios.traffic.network`). Reward: see
:attr:`TrafficConfig.reward`. ``state()`` concatenates every agent's
observation and the elapsed fraction of the episode, for centralised critics.
Episodes end by truncation after ``episode_seconds``.

Every agent's info carries ``decision``: False while the signal is inside its
minimum green, when the next action cannot change the phase (learners leave
those steps out of their policy loss; see :class:`~fleetmind.core.batch.Trajectory`).
"""

from __future__ import annotations

from typing import Any, ClassVar

import gymnasium
import numpy as np
from pettingzoo import ParallelEnv

from fleetmind.core.errors import InvalidInputError
from fleetmind.envs.scenarios.traffic.config import TrafficConfig, validate
from fleetmind.envs.scenarios.traffic.metrics import TrafficMetrics, metrics_from_totals
from fleetmind.envs.scenarios.traffic.network import LANES, NUM_APPROACHES, NUM_PHASES
from fleetmind.envs.scenarios.traffic.simulator import GridSimulator
from fleetmind.envs.team import ParallelStep

_PHASE_TIME_SCALE = 60.0
_WAIT_REWARD_SCALE = 100.0


class TrafficEnv(ParallelEnv[str, np.ndarray, int]):  # type: ignore[misc]  # untyped base
    """A grid of signalised intersections; each signal is an agent."""

    metadata: ClassVar[dict[str, Any]] = {
        "name": "fleetmind_traffic_v0",
        "render_modes": [],
        "is_parallelizable": True,
    }

    def __init__(self, config: TrafficConfig | None = None, env_id: str = "traffic") -> None:
        self.config = validate(config or TrafficConfig())
        self.env_id = env_id
        self.sim = GridSimulator(self.config)
        cols = self.config.cols
        self.possible_agents = [
            f"tl_{i // cols}_{i % cols}" for i in range(self.config.num_intersections)
        ]
        self.agents: list[str] = []
        self._index = {name: i for i, name in enumerate(self.possible_agents)}
        self._nb_dims = NUM_APPROACHES * NUM_APPROACHES if self.config.neighbour_obs else 0
        border_dims = NUM_APPROACHES if self.config.border_obs else 0
        time_dims = 2 if self.config.time_obs else 0
        self._border_at = 6 + 2 * LANES + self._nb_dims
        self._upstream_at = self._border_at + border_dims
        upstream_dims = NUM_APPROACHES + LANES if self.config.upstream_obs else 0
        self._phase_at = self._upstream_at + upstream_dims
        phase_dims = 2 * NUM_PHASES if self.config.phase_obs else 0
        self.obs_dim = self._phase_at + phase_dims + time_dims
        self._obs_space = gymnasium.spaces.Box(0.0, 1.0, (self.obs_dim,), np.float32)
        self._act_space = gymnasium.spaces.Discrete(NUM_PHASES)
        state_dim = self.obs_dim * len(self.possible_agents) + 1
        self.state_space = gymnasium.spaces.Box(0.0, 1.0, (state_dim,), np.float32)
        self._last_wait = np.zeros(self.config.num_intersections)
        self._obs = np.zeros((self.config.num_intersections, self.obs_dim), np.float32)
        self.render_mode = None

    def observation_space(self, agent: str) -> gymnasium.spaces.Box:
        """Same box for every agent."""
        return self._obs_space

    def action_space(self, agent: str) -> gymnasium.spaces.Discrete:
        """Same phase set for every agent."""
        return self._act_space

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]:
        """Empty roads, phase 0 everywhere; ``seed`` fixes the whole episode."""
        self.sim.reset(np.random.default_rng(seed))
        self.agents = list(self.possible_agents)
        self._last_wait = np.zeros(self.config.num_intersections)
        self._observe()
        return self._split(self._obs), self._infos()

    def step(self, actions: dict[str, int]) -> ParallelStep:
        """Apply one phase request per agent and advance ``delta_time`` seconds."""
        if not self.agents:
            raise InvalidInputError("traffic env: step() after the episode ended; call reset()")
        self.sim.step(self._action_array(actions))
        self._observe()
        rewards = self._rewards()
        done = self.sim.done
        agents = self.agents
        observations = self._split(self._obs)
        reward_dict = {a: float(rewards[self._index[a]]) for a in agents}
        terminations = dict.fromkeys(agents, False)
        truncations = dict.fromkeys(agents, done)
        infos = self._infos()
        if done:
            summary = self.traffic_metrics().to_dict()
            for info in infos.values():
                info["traffic_metrics"] = summary
            self.agents = []
        return observations, reward_dict, terminations, truncations, infos

    def _infos(self) -> dict[str, dict[str, Any]]:
        """Per agent: ``decision``, whether its next action can change the phase."""
        free = (self.sim.time_in_phase >= self.config.min_green).tolist()
        # Every agent is live for the whole episode, in possible_agents order.
        return {a: {"decision": f} for a, f in zip(self.agents, free, strict=True)}

    def _action_array(self, actions: dict[str, int]) -> np.ndarray:
        requested = self.sim.phase.copy()
        for agent, action in actions.items():
            index = self._index.get(agent)
            if index is None:
                raise InvalidInputError(
                    f"traffic env: unknown agent {agent!r}; agents are named tl_<row>_<col>"
                )
            try:
                phase = int(action)
            except (TypeError, ValueError) as exc:
                raise InvalidInputError(
                    f"traffic env: action {action!r} of agent {agent!r} is not a phase number"
                ) from exc
            if not 0 <= phase < NUM_PHASES:
                raise InvalidInputError(
                    f"traffic env: action {phase} of agent {agent!r} is outside the phase set "
                    f"0..{NUM_PHASES - 1}"
                )
            requested[index] = phase
        return requested

    def _observe(self) -> None:
        sim, cfg = self.sim, self.config
        obs = self._obs
        obs.fill(0.0)
        n = cfg.num_intersections
        obs[np.arange(n), sim.phase] = 1.0
        obs[:, 4] = np.minimum(sim.time_in_phase / _PHASE_TIME_SCALE, 1.0)
        obs[:, 5] = sim.time_in_phase >= cfg.min_green
        cap = float(sim.road_capacity)
        obs[:, 6 : 6 + LANES] = np.minimum(sim.queue / cap, 1.0)
        obs[:, 6 + LANES : 6 + 2 * LANES] = np.minimum(sim.approaching() / cap, 1.0)
        if cfg.neighbour_obs:
            per_approach = sim.queue.reshape(n, NUM_APPROACHES, -1).sum(axis=2) / (3 * cap)
            nb = sim.net.neighbours
            values = np.where((nb >= 0)[:, :, None], per_approach[np.maximum(nb, 0)], 0.0)
            obs[:, 6 + 2 * LANES : 6 + 2 * LANES + self._nb_dims] = np.minimum(
                values.reshape(n, -1), 1.0
            )
        if cfg.border_obs:
            obs[:, self._border_at : self._border_at + NUM_APPROACHES] = sim.net.neighbours < 0
        if cfg.upstream_obs:
            at = self._upstream_at
            obs[:, at : at + NUM_APPROACHES] = np.minimum(sim.upstream_release() / cap, 1.0)
            at += NUM_APPROACHES
            obs[:, at : at + LANES] = np.minimum(sim.arriving_next() / cap, 1.0)
        if cfg.phase_obs:
            at, scale = self._phase_at, 4.0 * cap
            green = sim.net.green.T.astype(np.float64)
            obs[:, at : at + NUM_PHASES] = np.minimum(sim.queue @ green / scale, 1.0)
            at += NUM_PHASES
            obs[:, at : at + NUM_PHASES] = np.minimum(sim.approaching() @ green / scale, 1.0)
        if cfg.time_obs:
            obs[:, -2] = min(sim.time_s / cfg.episode_seconds, 1.0)
            obs[:, -1] = sim.demand_factor() / max(cfg.demand.peak_factor, 1.0)

    def _split(self, obs: np.ndarray) -> dict[str, np.ndarray]:
        return {a: obs[self._index[a]].copy() for a in self.agents}

    def _rewards(self) -> np.ndarray:
        own = self._raw_rewards()
        weight = self.config.reward_neighbour_weight
        if weight:
            nb = self.sim.net.neighbours
            own = own + weight * np.where(nb >= 0, own[np.maximum(nb, 0)], 0.0).sum(axis=1)
        out: np.ndarray = own * self.config.reward_scale
        return out

    def _raw_rewards(self) -> np.ndarray:
        sim = self.sim
        kind = self.config.reward
        if kind == "queue":
            out: np.ndarray = -(sim.queue.sum(axis=1) + self._backlog_per_signal())
            return out
        if kind == "pressure":
            incoming = sim.queue.sum(axis=1)
            out = -np.abs(incoming - sim.outgoing_occupancy()).astype(np.float64)
            return out
        wait = sim.lane_wait_s.sum(axis=1)
        out = (self._last_wait - wait) / _WAIT_REWARD_SCALE
        self._last_wait = wait
        return out

    def _backlog_per_signal(self) -> np.ndarray:
        """Vehicles waiting outside the network at each signal's border roads."""
        sim = self.sim
        owner = sim.net.entry_slots // NUM_APPROACHES
        out: np.ndarray = np.bincount(
            owner, weights=sim.backlog, minlength=self.config.num_intersections
        )
        return out

    def state(self) -> np.ndarray:
        """Every agent's observation in agent order, then the elapsed episode fraction."""
        elapsed = min(self.sim.time_s / self.config.episode_seconds, 1.0)
        return np.append(self._obs.ravel(), np.float32(elapsed)).astype(np.float32)

    def traffic_metrics(self) -> TrafficMetrics:
        """Metrics of the episode so far (see :mod:`.metrics`)."""
        t = self.sim.totals
        return metrics_from_totals(t.waiting_vehicle_s, t.travel_vehicle_s, t.generated, t.exited)

    # SignalView, read by the baseline controllers.

    def current_phases(self) -> dict[str, int]:
        """Green phase index of every live signal."""
        return {a: int(self.sim.phase[self._index[a]]) for a in self.agents}

    def times_in_phase(self) -> dict[str, float]:
        """Seconds since each signal last changed phase."""
        return {a: float(self.sim.time_in_phase[self._index[a]]) for a in self.agents}

    def phase_queues(self) -> dict[str, np.ndarray]:
        """Queued vehicles on the lanes each phase serves, per signal."""
        values = self.sim.phase_queue()
        return {a: values[self._index[a]] for a in self.agents}

    def phase_pressures(self) -> dict[str, np.ndarray]:
        """Max-pressure weight of each phase, per signal."""
        values = self.sim.phase_pressure()
        return {a: values[self._index[a]] for a in self.agents}

    def fixed_green_times(self) -> dict[str, list[float]]:
        """The configured fixed-time plan, the same for every signal."""
        greens = [float(g) for g in self.config.fixed_green_s]
        return {a: list(greens) for a in self.possible_agents}

    def render(self) -> None:
        """No rendering; use ``state()`` or :meth:`traffic_metrics`."""
        return None

    def close(self) -> None:
        """Nothing to release."""
        return None
