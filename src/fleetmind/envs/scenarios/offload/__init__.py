"""Computation offloading: every vehicle of a fleet is an agent that places its tasks.

* :mod:`.expected_time`: the model's mean completion time E[T] of a plan.
"""

from fleetmind.envs.scenarios.offload.expected_time import OffloadPlan, expected_completion_time

__all__ = ["OffloadPlan", "expected_completion_time"]
