"""The numpy core of the built-in traffic simulator: queues, roads, signals.

A store-and-forward model with whole vehicles, advanced ``delta_time`` seconds
per :meth:`GridSimulator.step` for every intersection at once:

1. Signals: an intersection whose requested phase differs from its current one
   and has been green at least ``min_green`` seconds switches; the first
   ``yellow_time`` seconds of the step are then lost (yellow).
2. Discharge: every green lane releases up to ``saturation_flow`` vehicles per
   green second (fractions carry over while the lane stays green), limited by
   the free space on the road it feeds (spill-back).
3. Roads: released vehicles drive the next road for ``travel_steps`` steps,
   choosing their next movement (left, through, right) when they enter it;
   vehicles released towards the border leave the network.
4. Demand: Poisson arrivals at every border road; vehicles that do not fit wait
   outside the network (and count as waiting).

Episode measures (vehicle-seconds, arrivals, departures) accumulate in
:attr:`GridSimulator.totals`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from fleetmind.envs.scenarios.traffic.config import TrafficConfig
from fleetmind.envs.scenarios.traffic.network import (
    LANES,
    NUM_APPROACHES,
    NUM_MOVEMENTS,
    build_grid,
)


@dataclass
class EpisodeTotals:
    """Running sums of one episode, the inputs of the traffic metrics."""

    generated: int = 0
    """Vehicles that arrived at the border of the network."""
    exited: int = 0
    """Vehicles that left the network (throughput)."""
    waiting_vehicle_s: float = 0.0
    """Vehicle-seconds spent stopped (in a queue or outside a full entry road)."""
    travel_vehicle_s: float = 0.0
    """Vehicle-seconds spent in the system (driving, queued or waiting to enter)."""
    sim_seconds: float = 0.0
    """Simulated seconds so far."""


class GridSimulator:
    """Vectorised state of every queue, road and signal of a grid."""

    def __init__(self, config: TrafficConfig) -> None:
        self.config = config
        self.net = build_grid(config.rows, config.cols)
        n = config.num_intersections
        self.road_capacity = config.road_capacity
        self._steps = config.travel_steps
        self._dest = self.net.lane_dest
        self._slots = self.net.num_slots
        turn = np.asarray(config.demand.turn_ratios, dtype=np.float64)
        self._turn_p = turn / turn.sum()
        rates = np.asarray(config.demand.arrival_rates, dtype=np.float64)
        self._entry_rate = rates[self.net.entry_sides] * config.delta_time
        self.rng = np.random.default_rng()
        self.queue = np.zeros((n, LANES), dtype=np.int64)
        self.roads = np.zeros((self._steps, n, LANES), dtype=np.int64)
        self.backlog = np.zeros(len(self.net.entry_slots), dtype=np.int64)
        self.phase = np.zeros(n, dtype=np.int64)
        self.time_in_phase = np.zeros(n, dtype=np.int64)
        self.lane_wait_s = np.zeros((n, LANES), dtype=np.float64)
        self._carry = np.zeros((n, LANES), dtype=np.float64)
        self._head = 0
        self.time_s = 0
        self.totals = EpisodeTotals()

    def reset(self, rng: np.random.Generator) -> None:
        """Empty network, every signal at phase 0, the clock at zero."""
        self.rng = rng
        for array in (self.queue, self.roads, self.backlog, self.phase, self.time_in_phase):
            array.fill(0)
        self.lane_wait_s.fill(0.0)
        self._carry.fill(0.0)
        self._head = 0
        self.time_s = 0
        self.totals = EpisodeTotals()

    @property
    def done(self) -> bool:
        """True once the episode's simulated time has run out."""
        return self.time_s >= self.config.episode_seconds

    def demand_factor(self) -> float:
        """Multiplier of the base arrival rates at the current time."""
        demand = self.config.demand
        if demand.profile == "constant":
            return 1.0
        x = (self.time_s / self.config.episode_seconds - demand.peak_at) / demand.peak_width
        return 1.0 + (demand.peak_factor - 1.0) * math.exp(-0.5 * x * x)

    def approaching(self) -> np.ndarray:
        """``[I, LANES]`` vehicles driving towards each incoming lane."""
        out: np.ndarray = self.roads.sum(axis=0)
        return out

    def arriving_next(self) -> np.ndarray:
        """``[I, LANES]`` vehicles that join each incoming lane's queue in the next step."""
        out: np.ndarray = self.roads[self._head]
        return out

    def upstream_release(self) -> np.ndarray:
        """``[I, NUM_APPROACHES]`` vehicles queued on green lanes upstream that will
        drive into each approach (zero for border approaches)."""
        green = self.net.green[self.phase]
        weights = (self.queue * green).ravel()
        flows = np.bincount(self._dest, weights=weights, minlength=self._slots + 1)
        out: np.ndarray = flows[:-1].reshape(-1, NUM_APPROACHES)
        return out

    def slot_occupancy(self) -> np.ndarray:
        """``[num_slots]`` vehicles on each incoming road (queued plus driving)."""
        on_road = self.queue + self.approaching()
        out: np.ndarray = on_road.reshape(-1, NUM_MOVEMENTS).sum(axis=1)
        return out

    def step(self, requested: np.ndarray) -> int:
        """Advance ``delta_time`` seconds with the requested phase per intersection.

        Returns the number of vehicles that left the network in this step.
        """
        cfg = self.config
        dt = cfg.delta_time
        switch = (requested != self.phase) & (self.time_in_phase >= cfg.min_green)
        self.phase = np.where(switch, requested, self.phase)
        green_s = np.where(switch, dt - cfg.yellow_time, dt)
        self.time_in_phase = np.where(switch, green_s, self.time_in_phase + dt)
        green = self.net.green[self.phase]
        capacity = self._carry + green * (green_s * cfg.saturation_flow)[:, None]
        whole = np.floor(capacity)
        self._carry = np.where(green, capacity - whole, 0.0)
        occupancy = self.slot_occupancy()
        moved = self._release(np.minimum(self.queue, whole.astype(np.int64)), occupancy)
        inflow = np.bincount(self._dest, weights=moved.ravel(), minlength=self._slots + 1)
        exited = int(inflow[-1])
        entering = inflow[:-1].astype(np.int64)
        entering[self.net.entry_slots] += self._admit(occupancy)
        split = self.rng.multinomial(entering, self._turn_p).reshape(self.queue.shape)
        self.queue += self.roads[self._head]
        self.roads[self._head] = split
        self._head = (self._head + 1) % self._steps
        self.lane_wait_s += self.queue * float(dt)
        stopped = int(self.queue.sum() + self.backlog.sum())
        self.time_s += dt
        totals = self.totals
        totals.exited += exited
        totals.waiting_vehicle_s += stopped * dt
        totals.travel_vehicle_s += (stopped + int(self.roads.sum())) * dt
        totals.sim_seconds = float(self.time_s)
        return exited

    def _release(self, wanted: np.ndarray, occupancy: np.ndarray) -> np.ndarray:
        """Vehicles leaving each lane, scaled down where the next road is full."""
        demand = np.bincount(self._dest, weights=wanted.ravel(), minlength=self._slots + 1)
        space = np.append(self.road_capacity - occupancy, np.inf)
        ratio = np.clip(space / np.maximum(demand, 1.0), 0.0, 1.0)
        expected = wanted * ratio[self._dest].reshape(wanted.shape)
        # Stochastic rounding keeps small flows moving into a nearly full road.
        rounded = np.floor(expected + self.rng.random(wanted.shape)).astype(np.int64)
        moved: np.ndarray = np.minimum(rounded, wanted)
        queued = np.maximum(self.queue, 1)
        self.lane_wait_s -= self.lane_wait_s * (moved / queued)
        self.queue -= moved
        return moved

    def _admit(self, occupancy: np.ndarray) -> np.ndarray:
        """New vehicles at the border entering their road; the rest wait outside."""
        lam = self._entry_rate * self.demand_factor()
        arrivals = self.rng.poisson(lam)
        self.totals.generated += int(arrivals.sum())
        pending = self.backlog + arrivals
        space = np.maximum(self.road_capacity - occupancy[self.net.entry_slots], 0)
        admitted = np.minimum(pending, space)
        self.backlog = pending - admitted
        out: np.ndarray = admitted
        return out

    def phase_pressure(self) -> np.ndarray:
        """``[I, NUM_PHASES]`` max-pressure weight of each phase.

        A lane's pressure is its queue minus the vehicles per lane on the road it
        feeds (zero for roads leaving the network).
        """
        occupancy = np.append(self.slot_occupancy(), 0) / NUM_MOVEMENTS
        lane = self.queue - occupancy[self._dest].reshape(self.queue.shape)
        out: np.ndarray = lane @ self.net.green.T.astype(np.float64)
        return out

    def phase_queue(self) -> np.ndarray:
        """``[I, NUM_PHASES]`` vehicles queued on the lanes each phase serves."""
        out: np.ndarray = self.queue @ self.net.green.T.astype(np.int64)
        return out

    def outgoing_occupancy(self) -> np.ndarray:
        """``[I]`` vehicles on the roads leaving each intersection towards a neighbour."""
        occ = self.slot_occupancy().reshape(-1, NUM_APPROACHES)
        nb = self.net.neighbours
        # The road to the neighbour on side s is that neighbour's approach (s + 2) % 4.
        back = (np.arange(NUM_APPROACHES) + 2) % NUM_APPROACHES
        values = occ[np.maximum(nb, 0), back[None, :]]
        out: np.ndarray = np.where(nb >= 0, values, 0).sum(axis=1)
        return out
