"""The E[T] plan of a fleet whose every vehicle sends all its tasks to one place.

Vehicle ``i`` is task ``i`` and node ``i`` of :mod:`.expected_time`; edge server
``k`` is node ``M + k`` and the cloud is node ``M + K``. With the vehicles
standing still (``speed_mps: 0``), the links are those of the simulator after
``reset``, and::

    p_i   = arrival rate of vehicle i / the fleet's arrival rate
    t_i   = mean cycles / CPU speed of the place (local, edge, cloud)
    t_ij  = mean input bits / uplink rate to the serving edge server j   (edge)
    t_iC  = that upload + backhaul_latency_s + mean bits / backhaul_rate_bps  (cloud C)

(means over the task types by weight; the size spread keeps them). The simulator
measures the same mean when no task waits in a queue.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.offload.expected_time import OffloadPlan
from fleetmind.envs.scenarios.offload.simulator import CLOUD, EDGE, LOCAL, OffloadSimulator


def plan_for_placement(sim: OffloadSimulator, places: Sequence[int]) -> OffloadPlan:
    """The plan when vehicle ``v`` runs every task at ``places[v]`` (LOCAL, EDGE, CLOUD)."""
    cfg = sim.config
    m, k = cfg.vehicles, cfg.edge_servers
    place = np.asarray(places, dtype=np.int64)
    if place.shape != (m,) or not np.isin(place, (LOCAL, EDGE, CLOUD)).all():
        raise ConfigError(
            f"a placement needs one place per vehicle ({m}), each 0 (local), 1 (edge) or "
            f"2 (cloud); got {place.tolist()}"
        )
    rates = np.asarray(cfg.rates(), dtype=np.float64)
    if rates.sum() <= 0:
        raise ConfigError("no vehicle produces tasks (every arrival rate is 0); E[T] is undefined")
    bits = float(np.dot(sim.type_probs, sim.type_bits))
    cycles = float(np.dot(sim.type_probs, sim.type_cycles))
    speed = np.array([cfg.local_cpu_hz, cfg.edge_cpu_hz, cfg.cloud_cpu_hz])
    delays = np.zeros((m, m + k + 1))
    vehicle = np.arange(m)
    upload = bits / sim.serving_rate()
    edge = place == EDGE
    delays[vehicle[edge], m + sim.serving[edge]] = upload[edge]
    cloud = place == CLOUD
    backhaul = sim.cloud_delay(np.array(bits), np.array(0.0))
    delays[vehicle[cloud], m + k] = upload[cloud] + backhaul
    return OffloadPlan.of(rates / rates.sum(), cycles / speed[place], delays)
