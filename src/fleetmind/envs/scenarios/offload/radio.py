"""Where the vehicles and servers are, and how fast a vehicle can upload from there.

* Edge servers stand on a regular grid over the square area (cell centres).
* Vehicles drive straight at ``speed_mps`` in a random direction and bounce off
  the border.
* A vehicle's uplink to a server at distance ``d`` has the Shannon rate::

      rate = B * log2(1 + P * g(d) / (N0 * B)),   g(d) = g0 * max(d, d_min) ** -alpha

  with ``B`` the bandwidth, ``P`` the transmit power, ``N0`` the noise density,
  ``g0`` the gain at 1 m and ``alpha`` the path-loss exponent. Each vehicle has
  its own sub-channel (no interference between vehicles). Its serving edge server
  is the one with the best rate (the nearest).
"""

from __future__ import annotations

import math

import numpy as np

from fleetmind.envs.scenarios.offload.config import OffloadConfig

MIN_RATE_BPS = 1.0
"""Floor of a link's rate, so that an upload from beyond any server's reach ends."""


def edge_positions(config: OffloadConfig) -> np.ndarray:
    """``[K, 2]`` positions of the edge servers: the first K cell centres of a grid."""
    k = config.edge_servers
    cols = math.ceil(math.sqrt(k))
    rows = math.ceil(k / cols)
    index = np.arange(k)
    x = (index % cols + 0.5) / cols
    y = (index // cols + 0.5) / rows
    out: np.ndarray = np.stack([x, y], axis=1) * config.area_m
    return out


def random_motion(config: OffloadConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Start positions ``[M, 2]`` (uniform over the area) and velocities ``[M, 2]``."""
    m = config.vehicles
    positions = rng.uniform(0.0, config.area_m, (m, 2))
    heading = rng.uniform(0.0, 2 * math.pi, m)
    velocity = config.speed_mps * np.stack([np.cos(heading), np.sin(heading)], axis=1)
    return positions, velocity


def move(positions: np.ndarray, velocity: np.ndarray, seconds: float, side: float) -> None:
    """Advance every vehicle ``seconds``, bouncing off the border (both arrays in place)."""
    positions += velocity * seconds
    low, high = positions < 0.0, positions > side
    positions[low] = -positions[low]
    positions[high] = 2 * side - positions[high]
    np.clip(positions, 0.0, side, out=positions)
    velocity[low | high] *= -1.0


def uplink_rates(config: OffloadConfig, positions: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """``[M, K]`` Shannon rates (bits per second) from each vehicle to each edge server."""
    dx = positions[:, 0:1] - edges[None, :, 0]
    dy = positions[:, 1:2] - edges[None, :, 1]
    squared = np.maximum(dx * dx + dy * dy, config.min_distance_m**2)
    gain = 10.0 ** (config.reference_gain_db / 10.0) * squared ** (-config.path_loss_exponent / 2)
    noise_w = 10.0 ** ((config.noise_dbm_per_hz - 30.0) / 10.0) * config.bandwidth_hz
    rate = config.bandwidth_hz * np.log2(1.0 + config.tx_power_w * gain / noise_w)
    out: np.ndarray = np.maximum(rate, MIN_RATE_BPS)
    return out
