"""Team IMPALA: V-trace per network over the team's input rows; switches, state, sharing."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from tests.unit.algos.test_shared_step import train_together

from fleetmind.algos.actor_critic.network import ActorCritic
from fleetmind.algos.registry import get_algorithm
from fleetmind.algos.team.base import MultiAgentAlgoSpec
from fleetmind.algos.team.impala import TeamImpalaConfig, TeamImpalaLearner
from fleetmind.algos.team.nets import SplitActorCritic
from fleetmind.core.batch import Trajectory
from fleetmind.core.errors import CheckpointError, ConfigError
from fleetmind.envs.scenarios.coordination import CoordinationEnv
from fleetmind.envs.team import MultiAgentVectorEnv, describe
from fleetmind.runtime.chunk_format import empty_trajectory
from fleetmind.runtime.collector import Collector

from .games import MixedGame

SHARED: dict[str, Any] = {}
PER_AGENT: dict[str, Any] = {"share_parameters": False, "centralized_critic": False}
SEAC: dict[str, Any] = {**PER_AGENT, "experience_sharing": True}


def tiny(**kw: Any) -> TeamImpalaConfig:
    return TeamImpalaConfig(rollout_steps=8, hidden_sizes=(8,), **kw)


def collect(learner: TeamImpalaLearner, env: MultiAgentVectorEnv) -> list[Trajectory]:
    n = len(env.spec.agents)
    collector = Collector(env, 8, [lambda a: a] * n, [None] * n, layout=learner.layout, seed=0)
    return collector.collect(learner.rollout_policy())


def coordination(copies: int = 2) -> MultiAgentVectorEnv:
    return MultiAgentVectorEnv([lambda: CoordinationEnv(agents=3, choices=2)] * copies)


def params(learner: TeamImpalaLearner) -> list[np.ndarray]:
    return [p.detach().numpy().copy() for u in learner.nets for p in u.net.parameters()]


def test_registered_as_a_team_algorithm_with_the_team_switches() -> None:
    spec = get_algorithm("team-impala")
    assert isinstance(spec, MultiAgentAlgoSpec)
    assert spec.config_cls is TeamImpalaConfig
    cfg = TeamImpalaConfig()
    assert (cfg.share_parameters, cfg.centralized_critic, cfg.agent_id) == (True, True, True)
    with pytest.raises(ConfigError, match="experience_sharing needs share_parameters=false"):
        TeamImpalaConfig(experience_sharing=True).validate()
    with pytest.raises(ConfigError, match="rho_bar"):
        TeamImpalaConfig(rho_bar=0).validate()


def test_shared_and_per_agent_networks() -> None:
    spec = describe(CoordinationEnv(agents=3, choices=2))
    shared = TeamImpalaLearner(tiny(), spec, 0, "team-impala")
    assert len(shared.nets) == 1
    assert shared.trained_on == [[0, 1, 2]]
    assert isinstance(shared.nets[0].net, SplitActorCritic)  # centralised critic columns
    per_agent = TeamImpalaLearner(tiny(**PER_AGENT), spec, 0, "team-impala")
    assert len(per_agent.nets) == 3
    assert per_agent.trained_on == [[0], [1], [2]]
    assert not isinstance(per_agent.nets[0].net, SplitActorCritic)
    assert isinstance(per_agent.nets[0].net, ActorCritic)
    seac = TeamImpalaLearner(tiny(**SEAC), spec, 0, "team-impala")
    assert seac.trained_on == [[0, 1, 2], [1, 0, 2], [2, 0, 1]]


def test_heterogeneous_agents_need_separate_networks_and_then_train() -> None:
    with pytest.raises(ConfigError, match=r"--no-team-impala\.share-parameters"):
        TeamImpalaLearner(tiny(), describe(MixedGame()), 0, "team-impala")
    env = MultiAgentVectorEnv([MixedGame] * 2)
    learner = TeamImpalaLearner(tiny(share_parameters=False), env.spec, 0, "team-impala")
    before = params(learner)
    metrics = learner.update(collect(learner, env))
    assert np.isfinite(metrics["policy_loss"])
    assert any(not np.array_equal(a, b) for a, b in zip(before, params(learner), strict=True))


@pytest.mark.parametrize("switches", [SHARED, PER_AGENT, SEAC], ids=["shared", "per-agent", "seac"])
def test_update_changes_every_network_and_state_round_trips(switches: dict[str, Any]) -> None:
    env = coordination()
    cfg = tiny(**switches)
    learner = TeamImpalaLearner(cfg, env.spec, 0, "team-impala")
    trajectories = collect(learner, env)
    before = [[p.detach().clone() for p in u.net.parameters()] for u in learner.nets]
    metrics = learner.update(trajectories)
    assert learner.version == 1
    assert learner.env_steps == 16  # joint steps: 8 steps x 2 copies
    for key in ("policy_loss", "value_loss", "entropy", "rho_mean", "rho_clipped_fraction"):
        assert np.isfinite(metrics[key]), key
    for unit, old in zip(learner.nets, before, strict=True):
        changed = [not np.array_equal(o.numpy(), p.detach().numpy()) for o, p in
                   zip(old, unit.net.parameters(), strict=True)]  # fmt: skip
        assert any(changed)

    restored = TeamImpalaLearner(cfg, env.spec, 99, "team-impala")
    restored.load_state_dict(learner.state_dict())
    assert restored.version == 1
    assert restored.env_steps == 16
    for a, b in zip(params(learner), params(restored), strict=True):
        np.testing.assert_array_equal(a, b)
    obs = trajectories[0].obs[0][:, :8]
    for i, (mine, theirs) in enumerate(
        zip(learner.agent_policies(), restored.agent_policies(), strict=True)
    ):
        actor_in = learner.layout.actor_input(i, obs)
        np.testing.assert_array_equal(
            mine.decide(actor_in, True).outputs["action_probs"],
            theirs.decide(actor_in, True).outputs["action_probs"],
        )
    other = tiny(**(PER_AGENT if switches is SHARED else SHARED))
    with pytest.raises(CheckpointError, match="networks"):
        TeamImpalaLearner(other, env.spec, 0, "team-impala").load_state_dict(learner.state_dict())


def test_stale_behaviour_is_weighted_by_each_agents_clipped_ratio() -> None:
    env = coordination()
    learner = TeamImpalaLearner(tiny(**PER_AGENT, sgd_steps=1), env.spec, 0, "team-impala")
    trajectories = collect(learner, env)
    fresh = TeamImpalaLearner(tiny(**PER_AGENT, sgd_steps=1), env.spec, 0, "team-impala")
    assert fresh.update(trajectories)["rho_mean"] == pytest.approx(1.0, abs=1e-5)
    # A behaviour policy that made the taken actions e^3 times less likely than the
    # learner does: every ratio is e^3, beyond rho_bar, so every one is clipped.
    for t in trajectories:
        t.log_probs = t.log_probs - 3.0
    metrics = learner.update(trajectories)
    assert metrics["rho_clipped_fraction"] == 1.0
    assert metrics["rho_mean"] == pytest.approx(np.exp(3.0), rel=1e-4)


def _empty(learner: TeamImpalaLearner) -> list[Trajectory]:
    layout = learner.layout
    return [
        empty_trajectory(8, (layout.actor_dims[i] + layout.critic_dim,), action)
        for i, action in enumerate(layout.spec.action_spaces)
    ]


@pytest.mark.parametrize("switches", [SHARED, PER_AGENT], ids=["shared", "per-agent"])
def test_learners_sharing_updates_keep_every_network_identical(switches: dict[str, Any]) -> None:
    env = coordination()
    cfg = tiny(**switches)
    learners = [TeamImpalaLearner(cfg, env.spec, 3, "team-impala") for _ in range(2)]
    data = collect(learners[0], env)
    batches = [[data, data], [collect(learners[1], coordination(1)), _empty(learners[1])]]
    train_together(learners, batches)
    for learner in learners:
        assert all(u.reducer is learner.reducer for u in learner.nets)
    first, second = learners
    for a, b in zip(params(first), params(second), strict=True):
        np.testing.assert_array_equal(a, b)
    assert first.version == second.version == 2
    assert first.env_steps == second.env_steps == 8 * (2 + 1) + 8 * 2  # agreed by the group
