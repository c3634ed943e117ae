"""The numpy actor-critic reads its two MLPs; a copy is a snapshot."""

from __future__ import annotations

import numpy as np
import torch

from fleetmind.nn.mlp import mlp
from fleetmind.nn.numpy_actor_critic import NumpyActorCritic
from fleetmind.nn.numpy_mlp import linear_views


def test_head_and_value_follow_the_networks_and_a_copy_does_not() -> None:
    torch.manual_seed(0)
    actor, critic = mlp(5, (8,), 3, "relu"), mlp(5, (8,), 1, "relu")
    log_std = torch.zeros(3)
    view = NumpyActorCritic(
        linear_views(actor), linear_views(critic), "relu", log_std.numpy(), discrete=True
    )
    snapshot = view.copy()
    x = np.random.default_rng(0).normal(size=(4, 5)).astype(np.float32)
    before = snapshot.head(x).copy(), snapshot.value(x).copy()
    with torch.no_grad():
        for p in [*actor.parameters(), *critic.parameters(), log_std]:
            p.add_(0.5)
        expected = actor(torch.from_numpy(x)).numpy(), critic(torch.from_numpy(x))[:, 0].numpy()
    np.testing.assert_allclose(view.head(x), expected[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(view.value(x), expected[1], rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(snapshot.head(x), before[0])
    np.testing.assert_array_equal(snapshot.value(x), before[1])
    assert view.log_std[0] == 0.5
    assert snapshot.log_std[0] == 0.0
