"""Configuration of the built-in traffic simulator: the grid, the demand, the signals.

Every field has a docstring; :func:`validate` turns a bad value into a
:class:`ConfigError` that names the field and what would be accepted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from fleetmind.core.errors import ConfigError

RewardKind = Literal["queue", "wait", "pressure"]
DemandProfile = Literal["constant", "rush-hour"]

MAX_GRID_SIDE = 32
"""Largest number of rows or columns a grid may have."""


@dataclass(frozen=True)
class DemandConfig:
    """Where, how often and in which direction vehicles enter the network."""

    arrival_rates: tuple[float, float, float, float] = (0.08, 0.05, 0.08, 0.05)
    """Mean arrivals per second at each boundary entry, for vehicles entering from the
    north, east, south and west side of the network."""
    turn_ratios: tuple[float, float, float] = (0.15, 0.7, 0.15)
    """Share of vehicles turning left, going through and turning right at each
    intersection (normalised to sum to one)."""
    profile: DemandProfile = "constant"
    """Time profile of the arrival rates: ``constant``, or ``rush-hour`` (a peak of
    ``peak_factor`` times the base rates around ``peak_at`` of the episode)."""
    peak_factor: float = 2.5
    """Multiplier of the arrival rates at the top of the rush hour."""
    peak_at: float = 0.5
    """Time of the rush-hour peak, as a fraction of the episode (0 to 1)."""
    peak_width: float = 0.2
    """Width (standard deviation) of the rush-hour peak, as a fraction of the episode."""


@dataclass(frozen=True)
class TrafficConfig:
    """A grid of signalised intersections and its traffic."""

    rows: int = 1
    """Intersections per column of the grid (1 to 32)."""
    cols: int = 1
    """Intersections per row of the grid (1 to 32)."""
    demand: DemandConfig = field(default_factory=DemandConfig)
    """Arrival rates, turning ratios and their time profile."""
    episode_seconds: int = 3600
    """Simulated seconds per episode."""
    delta_time: int = 5
    """Simulated seconds between two decisions (one env step)."""
    min_green: int = 10
    """Seconds a phase stays green before the controller may change it."""
    yellow_time: int = 3
    """Seconds of yellow (no discharge) when the phase changes; less than delta_time."""
    saturation_flow: float = 0.5
    """Vehicles per second leaving one green lane with a queue."""
    link_length_m: float = 150.0
    """Length of every road between two intersections (and of the entry roads)."""
    speed_mps: float = 12.5
    """Free-flow speed on the roads, metres per second."""
    vehicle_spacing_m: float = 7.5
    """Road length one queued vehicle takes; sets how many vehicles fit on a road."""
    reward: RewardKind = "wait"
    """Reward of each signal: ``queue`` (minus queued vehicles, counting those waiting
    to enter the network at its border roads: summed over the signals, exactly the
    stopped vehicles the mean waiting time adds up), ``wait`` (decrease of
    the accumulated waiting time at the intersection) or ``pressure`` (minus the
    absolute difference of incoming queue and outgoing occupancy)."""
    reward_scale: float = 1.0
    """Multiplier of every reward (keeps returns near unit scale for learners that do
    not normalise rewards)."""
    reward_neighbour_weight: float = 0.0
    """Weight of the neighbouring signals' rewards added to each signal's own (0: own
    reward only); above 0 a signal also pays for the queues it sends downstream."""
    neighbour_obs: bool = False
    """Add the queues of the four neighbouring intersections to each observation."""
    border_obs: bool = False
    """Add four flags to each observation: which approaches (N, E, S, W) come from
    the border of the network, so a shared policy can tell edge from inner signals."""
    upstream_obs: bool = False
    """Add 16 entries to each observation: per approach (N, E, S, W), the vehicles
    queued on green lanes of the upstream intersection that drive towards it (a
    platoon on its way), and per incoming lane the vehicles that reach the queue
    within the next step (both / road capacity)."""
    phase_obs: bool = False
    """Add 8 entries to each observation: per phase, the vehicles queued on the lanes
    it serves and those driving towards them (both / (4 x road capacity)), so a
    policy sees directly what each of its actions would serve."""
    time_obs: bool = False
    """Add two entries to each observation: the elapsed fraction of the episode and
    the current demand multiplier relative to the rush-hour peak (where in the
    demand profile the network is; a real controller knows its clock)."""
    fixed_green_s: tuple[int, int, int, int] = (30, 10, 30, 10)
    """Green seconds of each phase for the fixed-time controller."""

    @property
    def num_intersections(self) -> int:
        """Number of signalised intersections (agents)."""
        return self.rows * self.cols

    @property
    def travel_steps(self) -> int:
        """Env steps a vehicle needs to drive one road at free-flow speed (at least 1)."""
        seconds = self.link_length_m / self.speed_mps
        return max(1, round(seconds / self.delta_time))

    @property
    def road_capacity(self) -> int:
        """Vehicles that fit on one road (queued plus moving)."""
        return max(1, int(self.link_length_m // self.vehicle_spacing_m))


def _positive(name: str, value: float) -> None:
    if not value > 0:
        raise ConfigError(f"traffic {name} must be positive, got {value!r}")


def validate(config: TrafficConfig) -> TrafficConfig:
    """Return ``config`` unchanged, or raise ConfigError naming the bad field."""
    for name, side in (("rows", config.rows), ("cols", config.cols)):
        if not isinstance(side, int) or not 1 <= side <= MAX_GRID_SIDE:
            raise ConfigError(
                f"traffic grid {name}={side!r} is invalid: "
                f"use a whole number from 1 to {MAX_GRID_SIDE}"
            )
    for name in ("episode_seconds", "delta_time", "saturation_flow", "link_length_m"):
        _positive(name, getattr(config, name))
    _positive("speed_mps", config.speed_mps)
    _positive("vehicle_spacing_m", config.vehicle_spacing_m)
    _positive("reward_scale", config.reward_scale)
    if not 0 <= config.reward_neighbour_weight <= 1:
        raise ConfigError(
            f"traffic reward_neighbour_weight={config.reward_neighbour_weight!r} must be "
            "between 0 and 1"
        )
    if config.min_green < 0 or config.yellow_time < 0:
        raise ConfigError("traffic min_green and yellow_time must not be negative")
    if config.yellow_time >= config.delta_time:
        raise ConfigError(
            f"traffic yellow_time={config.yellow_time} must be less than "
            f"delta_time={config.delta_time}"
        )
    if len(config.fixed_green_s) != 4 or any(g <= 0 for g in config.fixed_green_s):
        raise ConfigError(
            f"traffic fixed_green_s={config.fixed_green_s!r} needs four positive seconds"
        )
    _validate_demand(config.demand)
    return config


def _validate_demand(demand: DemandConfig) -> None:
    rates = demand.arrival_rates
    if len(rates) != 4:
        raise ConfigError(f"traffic arrival_rates needs 4 values (N, E, S, W), got {rates!r}")
    if any(not r >= 0 for r in rates):
        raise ConfigError(
            f"traffic arrival_rates={rates!r} has a negative or NaN rate; "
            "demand must be zero or more vehicles per second"
        )
    ratios = demand.turn_ratios
    if len(ratios) != 3 or any(not r >= 0 for r in ratios) or sum(ratios) <= 0:
        raise ConfigError(
            f"traffic turn_ratios={ratios!r} must be three non-negative shares "
            "(left, through, right) with a positive sum"
        )
    if demand.profile not in ("constant", "rush-hour"):
        raise ConfigError(
            f"traffic demand profile {demand.profile!r} is unknown; use constant or rush-hour"
        )
    if demand.peak_factor < 0 or demand.peak_width <= 0 or not 0 <= demand.peak_at <= 1:
        raise ConfigError(
            "traffic rush-hour needs peak_factor >= 0, peak_width > 0 and 0 <= peak_at <= 1"
        )
