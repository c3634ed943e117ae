"""Traffic measures of an episode, the same for every back end and every controller.

Both back ends sample the network once per env step (every ``delta_time``
seconds) and accumulate:

* ``waiting_vehicle_s``: vehicles stopped times seconds (queued at a signal,
  or not yet let into a full road);
* ``travel_vehicle_s``: vehicles in the system times seconds;
* ``generated``: vehicles that arrived (SUMO: departed), ``exited``: vehicles
  that left the network (SUMO: arrived).

Then ``mean_waiting_time_s = waiting_vehicle_s / generated`` and
``mean_travel_time_s = travel_vehicle_s / generated`` (Little's law; vehicles
still inside at the end count with the time they spent so far), and
``throughput_vehicles = exited``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Protocol

import numpy as np

METRIC_NAMES = ("mean_waiting_time_s", "mean_travel_time_s", "throughput_vehicles")


@dataclass(frozen=True)
class TrafficMetrics:
    """The measures of one episode."""

    mean_waiting_time_s: float
    """Stopped vehicle-seconds per vehicle that arrived."""
    mean_travel_time_s: float
    """Vehicle-seconds in the system per vehicle that arrived."""
    throughput_vehicles: int
    """Vehicles that left the network."""

    def to_dict(self) -> dict[str, float | int]:
        """A JSON-compatible dict."""
        return asdict(self)


def metrics_from_totals(
    waiting_vehicle_s: float, travel_vehicle_s: float, generated: int, exited: int
) -> TrafficMetrics:
    """Turn an episode's running sums into :class:`TrafficMetrics`."""
    per = max(int(generated), 1)
    return TrafficMetrics(
        mean_waiting_time_s=float(waiting_vehicle_s) / per,
        mean_travel_time_s=float(travel_vehicle_s) / per,
        throughput_vehicles=int(exited),
    )


class TrafficEnvLike(Protocol):
    """What the episode runner needs of a traffic env (either back end)."""

    possible_agents: list[str]
    agents: list[str]

    def reset(
        self, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, np.ndarray], dict[str, dict[str, Any]]]: ...

    def step(self, actions: dict[str, int]) -> tuple[Any, Any, Any, Any, Any]: ...

    def traffic_metrics(self) -> TrafficMetrics: ...


Decide = Callable[[Mapping[str, np.ndarray]], Mapping[str, int]]
"""Maps each live agent's observation to its action."""


def run_episode(
    env: TrafficEnvLike,
    decide: Decide,
    seed: int,
    on_reset: Callable[[], None] | None = None,
    max_steps: int = 1_000_000,
) -> tuple[TrafficMetrics, float]:
    """Play one episode from ``reset(seed=seed)``; return its metrics and team return.

    ``on_reset`` runs right after the reset (controllers read the new episode there).
    The team return is the sum of every agent's rewards.
    """
    observations, _ = env.reset(seed=seed)
    if on_reset is not None:
        on_reset()
    team_return = 0.0
    for _ in range(max_steps):
        if not env.agents:
            break
        actions = {agent: int(a) for agent, a in decide(observations).items()}
        observations, rewards, _, _, _ = env.step(actions)
        team_return += float(sum(rewards.values()))
    return env.traffic_metrics(), team_return


def summarize(episodes: Sequence[TrafficMetrics]) -> dict[str, Any]:
    """Means over episodes plus the per-episode values, as printed by ``baseline``."""
    rows = [m.to_dict() for m in episodes]
    means = {
        name: float(np.mean([r[name] for r in rows])) if rows else 0.0 for name in METRIC_NAMES
    }
    return {**means, "episodes": rows}
