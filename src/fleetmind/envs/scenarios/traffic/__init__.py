"""Traffic-signal control: every intersection is an agent.

* :class:`TrafficEnv`: the fast built-in simulator (numpy, PettingZoo parallel API);
* ``SumoTrafficEnv`` (``fleetmind[sumo]``): the same interface on real SUMO;
* :mod:`.controllers`: fixed-time, max-pressure and longest-queue baselines;
* :mod:`.evaluation`: episodes -> ``mean_waiting_time_s``, ``mean_travel_time_s``,
  ``throughput_vehicles``;
* :mod:`.catalog`: the ids ``traffic-*`` and ``sumo-*``.
"""

from fleetmind.envs.scenarios.traffic.catalog import (
    is_traffic_env_id,
    make_traffic_env,
    traffic_env_ids,
)
from fleetmind.envs.scenarios.traffic.config import DemandConfig, TrafficConfig
from fleetmind.envs.scenarios.traffic.env import TrafficEnv
from fleetmind.envs.scenarios.traffic.metrics import TrafficMetrics

__all__ = [
    "DemandConfig",
    "TrafficConfig",
    "TrafficEnv",
    "TrafficMetrics",
    "is_traffic_env_id",
    "make_traffic_env",
    "traffic_env_ids",
]
