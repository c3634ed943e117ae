"""Computation offloading: every vehicle of a fleet is an agent that places its tasks.

* :class:`OffloadEnv`: the vectorised numpy simulator (:mod:`.simulator`) behind
  the PettingZoo parallel API;
* :mod:`.expected_time`: the model's mean completion time E[T] of a plan, and
  :mod:`.plans` the plan of a fleet's placement.
"""

from fleetmind.envs.scenarios.offload.config import OffloadConfig, TaskType
from fleetmind.envs.scenarios.offload.env import OffloadEnv
from fleetmind.envs.scenarios.offload.expected_time import OffloadPlan, expected_completion_time
from fleetmind.envs.scenarios.offload.metrics import OffloadMetrics

__all__ = [
    "OffloadConfig",
    "OffloadEnv",
    "OffloadMetrics",
    "OffloadPlan",
    "TaskType",
    "expected_completion_time",
]
