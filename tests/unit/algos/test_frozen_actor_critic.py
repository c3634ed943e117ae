"""The frozen (serving) actor-critic decides exactly as the live policy does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fleetmind.algos.actor_critic import frozen as frozen_actor_critic
from fleetmind.algos.actor_critic.network import ActorCritic, ActorCriticPolicy
from fleetmind.algos.loading import actuator_for
from fleetmind.core.agent import Agent, identity
from fleetmind.core.normalizer import ObservationNormalizer, RunningMeanStd
from fleetmind.core.spaces import SpaceSpec

DISCRETE = SpaceSpec(kind="discrete", shape=(), dtype="int64", n=3)
BOX = SpaceSpec(kind="box", shape=(2,), dtype="float32", low=[-1.0, -1.0], high=[1.0, 1.0])
OBS = SpaceSpec(kind="box", shape=(5,), dtype="float32", low=[-1e9] * 5, high=[1e9] * 5)


def agent(space: SpaceSpec, activation: str, hidden: tuple[int, ...], normalise: bool) -> Agent:
    torch.manual_seed(0)
    net = ActorCritic(5, space, hidden, activation, init_log_std=-0.5)
    with torch.no_grad():  # non-trivial heads: the output layers start almost at zero
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    perceive = identity
    if normalise:  # offsets far from zero and a clip that binds: the normaliser matters
        data = np.random.default_rng(2).normal(1000.0, 0.01, size=(50, 5))
        perceive = ObservationNormalizer(RunningMeanStd.from_data(data), clip=1.5)
    return Agent(ActorCriticPolicy(net, space), OBS, space, perceive, actuator_for(space))


@pytest.mark.parametrize("space", [DISCRETE, BOX], ids=["discrete", "box"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "elu"])
@pytest.mark.parametrize("normalise", [True, False])
@pytest.mark.parametrize("fuse", [True, False])
def test_frozen_decisions_equal_live_ones(
    space: SpaceSpec, activation: str, normalise: bool, fuse: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not fuse:  # too wide to fuse: separate layers
        monkeypatch.setattr(frozen_actor_critic, "MAX_FUSED_WIDTH", 8)
    live = agent(space, activation, (32, 16), normalise)
    obs = np.random.default_rng(1).normal(1000.0, 0.02, size=(7, 5)).astype(np.float32)
    obs.flags.writeable = False  # as served: a view of the received bytes
    frozen = live.frozen_decider()(obs)
    expected = live.decide_batch(obs.copy(), deterministic=True)
    if space.kind == "discrete":
        np.testing.assert_array_equal(frozen.actions, expected.actions)
    else:
        np.testing.assert_allclose(frozen.actions, expected.actions, rtol=1e-5, atol=1e-6)
    assert set(frozen.outputs) == set(expected.outputs)
    for name, value in expected.outputs.items():
        np.testing.assert_allclose(frozen.outputs[name], value, rtol=1e-5, atol=1e-6)
        assert frozen.outputs[name].dtype == np.float32, name
        assert frozen.outputs[name].shape == value.shape, name


def test_frozen_decider_ignores_later_training() -> None:
    live = agent(DISCRETE, "tanh", (8, 8), normalise=False)
    decide = live.frozen_decider()
    obs = np.random.default_rng(3).normal(size=(4, 5)).astype(np.float32)
    before = decide(obs).outputs["value"].copy()
    with torch.no_grad():
        for p in live.policy.net.parameters():  # type: ignore[attr-defined]
            p.add_(1.0)
    np.testing.assert_array_equal(decide(obs).outputs["value"], before)
