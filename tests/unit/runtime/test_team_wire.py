"""Team chunks: what an actor's collector produces survives the wire exactly."""

from __future__ import annotations

import numpy as np
import pytest
from tests.unit.marl.games import LeavingGame, MixedGame

from fleetmind.algos.loading import actuator_for
from fleetmind.algos.team.ippo import IPPOConfig
from fleetmind.algos.team.mappo import MAPPOConfig
from fleetmind.algos.team.ppo import MultiAgentPPOConfig, MultiAgentPPOLearner
from fleetmind.core.errors import InvalidInputError
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.envs.team import MultiAgentVectorEnv
from fleetmind.rpc.team_codec import (
    TeamEpisode,
    concat_stats,
    split_stats,
    team_chunk_from_pb,
    team_chunk_pb,
)
from fleetmind.runtime.collector import Collector


def _roundtrip(game: type, config: MultiAgentPPOConfig) -> None:
    env = MultiAgentVectorEnv([game, game, game])
    learner = MultiAgentPPOLearner(config, env.spec, 0, "mappo")
    actuators = [actuator_for(s) for s in env.spec.action_spaces]
    collector = Collector(env, 5, actuators, [None] * env.num_agents, layout=learner.layout, seed=3)
    sent = collector.collect(learner.rollout_policy(), policy_version=7)
    episodes = [TeamEpisode(11.0, 4, (1.0, 10.0))]
    msg = team_chunk_pb(sent, learner.layout, "s", 1, None, episodes, {"env": 0.5})
    chunk = team_chunk_from_pb(msg, learner.layout, 5, None)
    assert len(chunk.agents) == env.num_agents
    for got, want in zip(chunk.agents, sent, strict=True):
        for name in ("obs", "actions", "log_probs", "values", "rewards", "valid", "next_values"):
            np.testing.assert_array_equal(getattr(got, name), getattr(want, name), name)
        assert got.policy_version == 7
    assert chunk.agent_returns == [[1.0, 10.0]]
    assert chunk.episode_returns == [11.0]
    assert chunk.trajectory.rewards.shape == (5, 3)


@pytest.mark.parametrize(
    "config",
    [MAPPOConfig(), IPPOConfig(), MAPPOConfig(agent_id=False)],
    ids=["mappo-state", "ippo", "mappo-no-id"],
)
def test_model_inputs_are_rebuilt_exactly(config: MultiAgentPPOConfig) -> None:
    _roundtrip(LeavingGame, config)


def test_heterogeneous_agents_travel_as_separate_tensors() -> None:
    # One-hot observations of width 4 beside flat (2, 2) boxes; discrete and box actions.
    _roundtrip(MixedGame, IPPOConfig())


def test_team_statistics_vector_merges_exactly() -> None:
    rng = np.random.default_rng(0)
    rows = [rng.standard_normal((6, d)) for d in (2, 3)]
    more = [rng.standard_normal((4, d)) for d in (2, 3)]
    parts: list[RunningMeanStd | None] = [RunningMeanStd.from_data(r) for r in rows]
    parts.insert(1, None)  # an agent whose observations are not normalised
    merged = concat_stats(parts)
    assert merged is not None
    delta = concat_stats(
        [RunningMeanStd.from_data(more[0]), None, RunningMeanStd.from_data(more[1])]
    )
    assert delta is not None
    merged.merge(delta)
    split = split_stats(merged, parts)
    assert split[1] is None
    for got, a, b in zip([split[0], split[2]], rows, more, strict=True):
        assert got is not None
        both = np.concatenate([a, b])
        np.testing.assert_allclose(got.mean, both.mean(axis=0))
        np.testing.assert_allclose(got.var, both.var(axis=0))
        assert got.count == 10
    with pytest.raises(InvalidInputError, match="hold 4 values; this team normalises 5"):
        split_stats(RunningMeanStd((4,)), parts)
