"""Configuration of the offloading scenario: the fleet, its tasks, the radio, the servers.

Every field has a docstring; :func:`validate` turns a bad value into a
:class:`ConfigError` that names the field and says what would be accepted.
Units are SI throughout: seconds, bits, CPU cycles, hertz, watts, joules, metres.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from fleetmind.core.errors import ConfigError

MAX_VEHICLES = 256
"""Largest fleet a scenario may have."""
MAX_EDGE_SERVERS = 64
"""Largest number of edge servers a scenario may have."""


@dataclass(frozen=True)
class TaskType:
    """One kind of work a vehicle's sensors produce (a camera frame to detect objects in)."""

    name: str = "detection"
    """Shown in the docs and logs only."""
    input_bits: float = 1.2e6
    """Mean input size: the bits uploaded when the task leaves the vehicle."""
    cycles: float = 3e8
    """Mean CPU cycles the task needs wherever it runs."""
    deadline_s: float = 0.4
    """A task that completes later than this after it arose misses its deadline."""
    weight: float = 1.0
    """Relative frequency among the scenario's task types (normalised to sum to one)."""


DEFAULT_TASK_TYPES: tuple[TaskType, ...] = (
    TaskType("detection", input_bits=1.2e6, cycles=3e8, deadline_s=0.4, weight=0.6),
    TaskType("segmentation", input_bits=4e6, cycles=1.2e9, deadline_s=1.0, weight=0.3),
    TaskType("mapping", input_bits=8e6, cycles=4e8, deadline_s=2.0, weight=0.1),
)
"""Object detection on a camera frame, segmentation of a lidar sweep, a map update."""


@dataclass(frozen=True)
class OffloadConfig:
    """A fleet of vehicles, K edge servers and one cloud."""

    vehicles: int = 2
    """Vehicles in the fleet (agents), 1 to 256."""
    edge_servers: int = 1
    """Edge servers, 1 to 64, placed on a regular grid over the area."""
    area_m: float = 400.0
    """Side of the square area the vehicles drive in."""
    speed_mps: float = 10.0
    """Speed of every vehicle (0: the fleet stands still); each drives straight in a
    random direction and bounces off the border of the area."""
    step_s: float = 0.2
    """Simulated seconds per env step. A task can arise at each step; its timing after
    that (queues, uploads, execution) is computed in continuous time."""
    episode_steps: int = 150
    """Env steps per episode."""
    arrival_rate: float = 2.0
    """Tasks per second each vehicle produces: a task arises at a step with probability
    ``arrival_rate * step_s`` (so at most ``1 / step_s``)."""
    arrival_rates: tuple[float, ...] | None = None
    """Per-vehicle rates instead of ``arrival_rate`` (one per vehicle); None: all equal."""
    task_types: tuple[TaskType, ...] = DEFAULT_TASK_TYPES
    """The kinds of task the sensors produce, drawn by weight."""
    size_spread: float = 0.2
    """Each task's input bits and cycles are its type's times a uniform factor in
    ``[1 - size_spread, 1 + size_spread]`` (mean kept); 0 to below 1."""
    local_cpu_hz: float = 1.5e9
    """CPU cycles per second a vehicle computes with (one task at a time, in order)."""
    edge_cpu_hz: float = 2e10
    """CPU cycles per second of one edge server (one task at a time, first come first
    served in the order the uploads arrive)."""
    cloud_cpu_hz: float = 5e10
    """CPU cycles per second the cloud gives each task (no queue: it scales out)."""
    bandwidth_hz: float = 10e6
    """Radio bandwidth of each vehicle's uplink (its own sub-channel)."""
    tx_power_w: float = 0.2
    """Transmit power of a vehicle's radio."""
    noise_dbm_per_hz: float = -174.0
    """Noise power spectral density at the receiver."""
    reference_gain_db: float = -40.0
    """Channel gain at 1 m; the gain falls as ``distance ** -path_loss_exponent``."""
    path_loss_exponent: float = 3.0
    """Exponent of the distance-dependent path loss (2: free space; 3 to 4: urban)."""
    min_distance_m: float = 10.0
    """Distances below this count as this (the antenna height, roughly)."""
    backhaul_latency_s: float = 0.08
    """One-way delay from an edge server to the cloud."""
    backhaul_rate_bps: float = 2e8
    """Bits per second of the backhaul (no queue: every task gets it)."""
    cpu_energy_coefficient: float = 1e-28
    """Effective switched capacitance kappa: computing c cycles at f hertz on board costs
    ``kappa * f**2 * c`` joules."""
    report_period_s: float = 0.5
    """Edge servers broadcast their backlog this often; vehicles see the last report
    (0: always up to date)."""
    miss_penalty_s: float = 1.0
    """Cost of a missed deadline, in seconds of completion time."""
    energy_weight: float = 0.1
    """Cost of a joule of on-board energy, in seconds of completion time."""
    reward_scale: float = 1.0
    """Multiplier of every reward."""
    team_reward_weight: float = 0.0
    """Share of each reward taken from the fleet's mean (0: own tasks only; 1: the
    fleet's mean only)."""

    def rates(self) -> tuple[float, ...]:
        """Every vehicle's arrival rate, tasks per second."""
        if self.arrival_rates is not None:
            return tuple(self.arrival_rates)
        return (self.arrival_rate,) * self.vehicles

    def type_probabilities(self) -> tuple[float, ...]:
        """The task types' weights normalised to sum to one."""
        total = sum(t.weight for t in self.task_types)
        return tuple(t.weight / total for t in self.task_types)


def _positive(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(f"offload {name}={value!r} must be a positive number")


def _non_negative(name: str, value: float) -> None:
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"offload {name}={value!r} must be zero or a positive number")


def _count(name: str, value: int, most: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= most:
        raise ConfigError(
            f"offload {name}={value!r} is invalid: use a whole number from 1 to {most}"
        )


def validate(config: OffloadConfig) -> OffloadConfig:
    """Return ``config`` unchanged, or raise ConfigError naming the bad field."""
    _count("vehicles", config.vehicles, MAX_VEHICLES)
    _count("edge_servers", config.edge_servers, MAX_EDGE_SERVERS)
    _count("episode_steps", config.episode_steps, 10**7)
    for name in (
        "area_m", "step_s", "local_cpu_hz", "edge_cpu_hz", "cloud_cpu_hz", "bandwidth_hz",
        "tx_power_w", "path_loss_exponent", "min_distance_m", "backhaul_rate_bps",
        "reward_scale",
    ):  # fmt: skip
        _positive(name, getattr(config, name))
    for name in (
        "speed_mps", "backhaul_latency_s", "cpu_energy_coefficient", "report_period_s",
        "miss_penalty_s", "energy_weight",
    ):  # fmt: skip
        _non_negative(name, getattr(config, name))
    for name in ("noise_dbm_per_hz", "reference_gain_db"):
        if not math.isfinite(getattr(config, name)):
            raise ConfigError(f"offload {name} must be a finite number of dB")
    if not 0 <= config.size_spread < 1:
        raise ConfigError(f"offload size_spread={config.size_spread!r} must be in [0, 1)")
    if not 0 <= config.team_reward_weight <= 1:
        raise ConfigError(
            f"offload team_reward_weight={config.team_reward_weight!r} must be between 0 and 1"
        )
    _validate_rates(config)
    _validate_task_types(config.task_types)
    return config


def _validate_rates(config: OffloadConfig) -> None:
    if config.arrival_rates is None:
        named = {"arrival_rate": config.arrival_rate}
    elif len(config.arrival_rates) != config.vehicles:
        raise ConfigError(
            f"offload arrival_rates has {len(config.arrival_rates)} values for "
            f"{config.vehicles} vehicles; give one rate per vehicle or leave it unset"
        )
    else:
        named = {f"arrival_rates[{i}]": r for i, r in enumerate(config.arrival_rates)}
    for name, rate in named.items():
        _non_negative(name, rate)
        if rate * config.step_s > 1:
            raise ConfigError(
                f"offload {name}={rate} tasks/s with step_s={config.step_s} gives more than "
                f"one task per step; use at most {1 / config.step_s:g} tasks/s or a shorter "
                "step_s"
            )


def _validate_task_types(types: tuple[TaskType, ...]) -> None:
    if not types:
        raise ConfigError("offload task_types is empty; give at least one task type")
    for task in types:
        where = f"task type {task.name!r}"
        for name in ("input_bits", "cycles", "deadline_s"):
            value = getattr(task, name)
            if not (math.isfinite(value) and value > 0):
                raise ConfigError(f"offload {where}: {name}={value!r} must be positive")
        if not (math.isfinite(task.weight) and task.weight >= 0):
            raise ConfigError(f"offload {where}: weight={task.weight!r} must not be negative")
    if sum(t.weight for t in types) <= 0:
        raise ConfigError("offload task_types: the weights must not all be zero")
