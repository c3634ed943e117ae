"""The environment ids fleetmind registers out of the box (besides Gymnasium's).

The registry (:mod:`fleetmind.envs.registry`) registers these at import, in this
order, which is the order ``fleetmind envs`` lists them in. A new scenario module
defines its ``ENTRIES`` (see :mod:`fleetmind.envs.env_entry`) and is added here;
code outside fleetmind calls :func:`fleetmind.envs.registry.register_env` instead.
"""

from __future__ import annotations

from fleetmind.envs.env_entry import EnvEntry
from fleetmind.envs.scenarios import coordination, mpe2
from fleetmind.envs.scenarios.jobshop import catalog as jobshop
from fleetmind.envs.scenarios.offload import catalog as offload
from fleetmind.envs.scenarios.traffic import catalog as traffic

BUILTIN_ENTRIES: tuple[EnvEntry, ...] = (
    *traffic.ENTRIES,
    *offload.ENTRIES,
    *jobshop.ENTRIES,
    *coordination.ENTRIES,
    *mpe2.ENTRIES,
)
"""Traffic signals, computation offloading, job-shop dispatching, the coordination game
and PettingZoo's MPE2 games."""
