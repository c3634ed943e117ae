"""fleetmind's vocabulary: read this package first.

An agent perceives, decides and acts (:mod:`fleetmind.core.agent`)::

    agent = fleetmind.load("runs/cartpole")
    action = agent.act(observation)          # perceive -> policy.decide -> actuate

Training is a loop between a rollout policy and a learner
(:mod:`fleetmind.core.learning`), over plain numpy data
(:mod:`fleetmind.core.batch`)::

    policy = learner.rollout_policy()
    while not done:
        trajectory = collect(env, policy)    # Trajectory: [T, E] arrays
        metrics = learner.update(trajectory) # version += 1
        stats.add(episode_return, length)    # EpisodeStats decide "solved"

A team is the same loop with an agent axis: a :class:`TeamLearner` takes one
trajectory per agent, its :class:`TeamRolloutPolicy` steps every agent at once, and
a single agent is a team of one.

Errors form one tree (:mod:`fleetmind.core.errors`). No torch and no gRPC below
this line: every other layer builds on these.
"""

from fleetmind.core.agent import Agent, Decision, Policy
from fleetmind.core.batch import Trajectory
from fleetmind.core.episodes import EpisodeStats
from fleetmind.core.errors import FleetmindError
from fleetmind.core.learning import (
    InputBuilder,
    Learner,
    RolloutPolicy,
    StepOutput,
    SumReducer,
    TeamLearner,
    TeamRolloutPolicy,
)
from fleetmind.core.normalizer import ObservationNormalizer, RunningMeanStd
from fleetmind.core.spaces import SpaceSpec

__all__ = [
    "Agent",
    "Decision",
    "EpisodeStats",
    "FleetmindError",
    "InputBuilder",
    "Learner",
    "ObservationNormalizer",
    "Policy",
    "RolloutPolicy",
    "RunningMeanStd",
    "SpaceSpec",
    "StepOutput",
    "SumReducer",
    "TeamLearner",
    "TeamRolloutPolicy",
    "Trajectory",
]
