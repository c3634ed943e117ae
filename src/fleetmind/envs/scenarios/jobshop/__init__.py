"""Job-shop dispatching under machine breakdowns (smart manufacturing).

* :mod:`.instance`: Taillard and OR-Library files, the shipped ta01-ta10 and ft06,
  seeded random instances;
* :mod:`.breakdowns`: per-machine Weibull failures, repairs, wear, maintenance;
* :mod:`.warning`: the fault warning (failure within a horizon, from the wear
  readings); :mod:`.maintenance`: when to maintain one machine, as an env;
  :mod:`.shop_warning`: the warning read on the shop floor, maintaining machines
  between dispatching decisions;
* :mod:`.schedule`: schedules and the feasibility checker every method passes;
* :mod:`.dispatch`: the event-driven dispatching simulation; :mod:`.rules` the
  dispatching rules and right-shift repair; :mod:`.cpsat` the exact reference;
* :mod:`.env`: the Gymnasium env; :mod:`.catalog`: the ids ``fleetmind/jobshop-*``
  and ``fleetmind/maintenance-v0``;
* :mod:`.solve`: one method on one instance, checked (``fleetmind jobshop solve``).
"""

from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
from fleetmind.envs.scenarios.jobshop.catalog import jobshop_env_ids, make_jobshop_env
from fleetmind.envs.scenarios.jobshop.env import JobShopConfig, JobShopEnv
from fleetmind.envs.scenarios.jobshop.instance import (
    JobShopInstance,
    load_instance,
    parse_instance,
    random_instance,
    shipped_instance,
)
from fleetmind.envs.scenarios.jobshop.schedule import Schedule, check_schedule

__all__ = [
    "BreakdownModel",
    "JobShopConfig",
    "JobShopEnv",
    "JobShopInstance",
    "Schedule",
    "check_schedule",
    "jobshop_env_ids",
    "load_instance",
    "make_jobshop_env",
    "parse_instance",
    "random_instance",
    "shipped_instance",
]
