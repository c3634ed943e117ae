"""Computation offloading: every vehicle of a fleet is an agent that places its tasks.

* :class:`OffloadEnv`: the vectorised numpy simulator (:mod:`.simulator`) behind
  the PettingZoo parallel API;
* :mod:`.expected_time`: the model's mean completion time E[T] of a plan, and
  :mod:`.plans` the plan of a fleet's placement;
* :mod:`.policies`: all-local, all-edge, all-cloud, random, round-robin, greedy
  and the per-step exhaustive optimum (:mod:`.static_batch`);
* :mod:`.evaluation`: episodes -> ``mean_completion_time_s``,
  ``deadline_miss_rate``, ``mean_energy_j``;
* :mod:`.catalog`: the ids ``fleetmind/offload-*``.
"""

from fleetmind.envs.scenarios.offload.catalog import make_offload_env, offload_env_ids
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
    "make_offload_env",
    "offload_env_ids",
]
