"""Plain types and small interfaces: spaces, trajectories, the agent, errors.

No torch and no gRPC below this line: every other layer builds on these.
"""

from fleetmind.core.agent import Agent, Decision, Policy
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import FleetmindError
from fleetmind.core.normalizer import ObservationNormalizer, RunningMeanStd
from fleetmind.core.spaces import SpaceSpec

__all__ = [
    "Agent",
    "Decision",
    "FleetmindError",
    "ObservationNormalizer",
    "Policy",
    "RunningMeanStd",
    "SpaceSpec",
    "Trajectory",
]
