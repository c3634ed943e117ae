"""The serving/evaluation policy: numpy decisions agree with the torch network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from fleetmind.algos.actor_critic.network import ActorCritic, ActorCriticPolicy
from fleetmind.core.spaces import SpaceSpec

DISCRETE = SpaceSpec(kind="discrete", shape=(), dtype="int64", n=3)
BOX = SpaceSpec(kind="box", shape=(2,), dtype="float32", low=[-1.0, -1.0], high=[1.0, 1.0])


@pytest.mark.parametrize("space", [DISCRETE, BOX], ids=["discrete", "box"])
@pytest.mark.parametrize("activation", ["tanh", "relu", "elu"])
def test_numpy_decision_matches_torch(space: SpaceSpec, activation: str) -> None:
    torch.manual_seed(0)
    net = ActorCritic(5, space, (32, 16), activation, init_log_std=-0.5)
    with torch.no_grad():  # non-trivial heads: the output layers start almost at zero
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    obs = np.random.default_rng(1).normal(size=(7, 5)).astype(np.float32)
    decision = ActorCriticPolicy(net, space).decide(obs, deterministic=True)
    with torch.inference_mode():
        actions, outputs = net.outputs(torch.from_numpy(obs), deterministic=True)
    if space.kind == "discrete":
        np.testing.assert_array_equal(decision.actions, actions.numpy())
    else:
        np.testing.assert_allclose(decision.actions, actions.numpy(), rtol=1e-5, atol=1e-6)
    assert set(decision.outputs) == set(outputs)
    for name, value in outputs.items():
        np.testing.assert_allclose(
            decision.outputs[name], value.detach().numpy(), rtol=1e-5, atol=1e-6
        )
        assert decision.outputs[name].dtype == np.float32, name


def test_decisions_follow_in_place_parameter_updates() -> None:
    torch.manual_seed(0)
    net = ActorCritic(4, DISCRETE, (8,))
    policy = ActorCriticPolicy(net, DISCRETE)
    obs = np.ones((1, 4), dtype=np.float32)
    before = policy.decide(obs, deterministic=True).outputs["value"].copy()
    with torch.no_grad():
        net.critic[-1].bias.add_(1.0)
    after = policy.decide(obs, deterministic=True).outputs["value"]
    np.testing.assert_allclose(after, before + 1.0, rtol=1e-6)
