"""The multi-agent PPO family: inputs, networks, switches, updates, state."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

from fleetmind.algos.team.ippo import IPPOConfig
from fleetmind.algos.team.learner_base import groups_of
from fleetmind.algos.team.mappo import MAPPOConfig
from fleetmind.algos.team.nets import InputLayout, SplitActorCritic
from fleetmind.algos.team.ppo import MultiAgentPPOLearner
from fleetmind.core.errors import CheckpointError, ConfigError
from fleetmind.core.spaces import SpaceSpec
from fleetmind.envs.scenarios.coordination import CoordinationEnv
from fleetmind.envs.team import MultiAgentSpec, MultiAgentVectorEnv, describe
from fleetmind.runtime.collector import Collector

from .games import MixedGame

COORD = describe(CoordinationEnv(agents=3, choices=2))  # obs 8, state 8, 3 agents


def tiny(cls: type, **kw: object) -> Any:
    return cls(rollout_steps=8, minibatch_size=16, update_epochs=2, hidden_sizes=(8,), **kw)


def test_input_layout_dimensions() -> None:
    shared = InputLayout(COORD, agent_id=True, centralized_critic=True)
    assert shared.actor_dims == [8 + 3] * 3
    assert shared.critic_dim == 8 + 3
    obs = [np.full((2, 8), i, np.float32) for i in range(3)]
    row = shared.model_input(1, obs, np.full((2, 8), 9.0, np.float32))
    np.testing.assert_array_equal(row[0], [1] * 8 + [0, 1, 0] + [9] * 8 + [0, 1, 0])
    no_state = InputLayout(describe(MixedGame()), agent_id=False, centralized_critic=True)
    assert no_state.critic_dim == 4 + 4  # every observation concatenated
    local = InputLayout(COORD, agent_id=False, centralized_critic=False)
    assert local.critic_dim == 0
    assert local.actor_dims == [8, 8, 8]


def test_split_actor_critic_reads_its_own_columns() -> None:
    net = SplitActorCritic(3, 2, SpaceSpec("discrete", (), "int64", n=2), (8,), "tanh", 0.0)
    x = torch.randn(4, 5)
    y = x.clone()
    y[:, 3:] += 1.0  # change only the critic columns
    assert torch.equal(net.actor(x), net.actor(y))
    assert not torch.equal(net.value(x), net.value(y))
    assert torch.equal(net.actor(x), net.actor(x[:, :3]))  # actor input alone suffices


def test_sharing_with_different_spaces_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"identical observation and action spaces.*switch_0"):
        MultiAgentPPOLearner(tiny(MAPPOConfig), describe(MixedGame()), 0, "mappo")
    with pytest.raises(ConfigError, match=r"--no-mappo\.share-parameters"):
        MultiAgentPPOLearner(tiny(MAPPOConfig), describe(MixedGame()), 0, "mappo")
    # separate networks train heterogeneous agents
    learner = MultiAgentPPOLearner(
        tiny(MAPPOConfig, share_parameters=False),
        describe(MixedGame()),
        0,
        "mappo",
    )
    assert len(learner.nets) == 2


def test_contradictory_switches_are_refused() -> None:
    with pytest.raises(ConfigError, match="experience_sharing needs share_parameters=false"):
        MAPPOConfig(experience_sharing=True).validate()
    with pytest.raises(ConfigError, match="gamma"):
        IPPOConfig(gamma=1.5).validate()


def test_groups_and_experience_sharing() -> None:
    box = SpaceSpec("box", (2,), "float32", low=(0.0, 0.0), high=(1.0, 1.0))
    act = SpaceSpec("discrete", (), "int64", n=2)
    spec = MultiAgentSpec(("adversary_0", "adversary_1", "agent_0"), (box,) * 3, (act,) * 3, None)
    assert groups_of(spec) == [0, 0, 1]
    learner = MultiAgentPPOLearner(
        tiny(IPPOConfig, experience_sharing=True),
        spec,
        0,
        "ippo",
    )
    assert learner.trained_on == [[0, 1], [1, 0], [2]]
    independent = MultiAgentPPOLearner(tiny(IPPOConfig), spec, 0, "ippo")
    assert independent.trained_on == [[0], [1], [2]]
    shared = MultiAgentPPOLearner(tiny(MAPPOConfig), spec, 0, "mappo")
    assert shared.trained_on == [[0, 1, 2]]
    assert len(shared.nets) == 1


@pytest.mark.parametrize(
    ("cls", "extra"),
    [(MAPPOConfig, {}), (IPPOConfig, {}), (IPPOConfig, {"experience_sharing": True})],
)
def test_update_bumps_version_and_state_round_trips(cls: type, extra: dict[str, object]) -> None:
    cfg = tiny(cls, **extra)
    env = MultiAgentVectorEnv([lambda: CoordinationEnv(agents=3, choices=2)] * 2)
    learner = MultiAgentPPOLearner(cfg, env.spec, 0, cls.__name__)
    collector = Collector(env, 8, [lambda a: a] * 3, [None] * 3, layout=learner.layout, seed=0)
    trajectories = collector.collect(learner.rollout_policy())
    assert len(trajectories) == 3
    assert trajectories[0].obs.shape[:2] == (8, 2)
    metrics = learner.update(trajectories)
    assert learner.version == 1
    assert learner.env_steps == 16
    assert np.isfinite(metrics["policy_loss"])
    assert np.isfinite(metrics["value_loss"])
    restored = MultiAgentPPOLearner(cfg, env.spec, 99, cls.__name__)
    restored.load_state_dict(learner.state_dict())
    x = trajectories[0].obs[0]
    for mine, theirs in zip(learner.agent_policies(), restored.agent_policies(), strict=True):
        actor_in = learner.layout.actor_input(0, x[:, :8])
        np.testing.assert_array_equal(
            mine.decide(actor_in, True).outputs["action_probs"],
            theirs.decide(actor_in, True).outputs["action_probs"],
        )
    assert restored.version == 1
    wrong = MultiAgentPPOLearner(tiny(IPPOConfig), env.spec, 0, "ippo")
    if len(wrong.nets) != len(learner.nets):
        with pytest.raises(CheckpointError, match="networks"):
            wrong.load_state_dict(learner.state_dict())


def test_collector_masks_inactive_rows_and_counts_team_returns() -> None:
    from .games import LeavingGame

    env = MultiAgentVectorEnv([LeavingGame])
    layout = InputLayout(env.spec, agent_id=False, centralized_critic=True)

    class Fixed:
        def step(self, inputs: list[np.ndarray]) -> list[object]:
            from fleetmind.core.learning import StepOutput

            n = inputs[0].shape[0]
            return [
                StepOutput(np.ones(n, np.int64), np.zeros(n, np.float32), np.zeros(n, np.float32))
            ] * 2

    collector = Collector(env, 5, [lambda a: a] * 2, [None, None], layout=layout)
    stayer, quitter = collector.collect(Fixed())
    np.testing.assert_array_equal(stayer.valid[:, 0], [True, True, True, False, True])
    np.testing.assert_array_equal(quitter.valid[:, 0], [True, False, False, False, True])
    np.testing.assert_array_equal(quitter.rewards[:, 0], [10, 0, 0, 0, 10])
    assert collector.stats.episodes == 1
    assert collector.stats.returns[0] == 13.0
    assert collector.agent_returns.means() == {"stayer": 3.0, "quitter": 10.0}
    # each row is [own obs | global state [t, actions so far]]
    np.testing.assert_array_equal(stayer.obs[1, 0], [1, 1, 2])
