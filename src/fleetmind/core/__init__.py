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

Actors and learners exchange plain types (:mod:`fleetmind.core.exchange`): an
actor sends a :class:`Chunk` (every agent's trajectory) through a
:class:`LearnerClient` and gets :class:`Weights` back; over the network the client
speaks gRPC, in one process it calls the learner directly::

    session = client.register(actor_id, env_id, num_envs, pid)
    answer = client.exchange().round(chunk)    # sync mode: the next version

Errors form one tree (:mod:`fleetmind.core.errors`). No torch and no gRPC below
this line: every other layer builds on these.
"""

from fleetmind.core.agent import Agent, Decision, Policy
from fleetmind.core.batch import Trajectory
from fleetmind.core.episodes import EpisodeStats
from fleetmind.core.errors import FleetmindError
from fleetmind.core.exchange import Chunk, LearnerClient, SessionInfo, Weights
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
    "Chunk",
    "Decision",
    "EpisodeStats",
    "FleetmindError",
    "InputBuilder",
    "Learner",
    "LearnerClient",
    "ObservationNormalizer",
    "Policy",
    "RolloutPolicy",
    "RunningMeanStd",
    "SessionInfo",
    "SpaceSpec",
    "StepOutput",
    "SumReducer",
    "TeamLearner",
    "TeamRolloutPolicy",
    "Trajectory",
    "Weights",
]
