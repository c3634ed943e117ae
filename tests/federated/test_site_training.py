"""A site's round: K steps of the ordinary learner from the global weights."""

from __future__ import annotations

import numpy as np
import pytest

from fleetmind.core.errors import ConfigError
from fleetmind.federated.settings import FederationSettings
from fleetmind.federated.site_training import SiteTrainer, get_weights, set_weights
from fleetmind.federated.strategies import update_norm

STEPS = 256


def trainer(**kw: object) -> SiteTrainer:
    base: dict[str, object] = {
        "env_id": "CartPole-v1",
        "sites": 2,
        "rounds": 2,
        "local_steps": STEPS,
        "site_params": [{"length": 0.4}, {"length": 0.8, "masscart": 2.0}],
    }
    return SiteTrainer(FederationSettings(**{**base, **kw}), site=1)  # type: ignore[arg-type]


def initial() -> dict[str, np.ndarray]:
    return get_weights(trainer().build(1, seed=5))


def test_a_site_trains_its_budget_from_the_global_weights() -> None:
    start = initial()
    result = trainer().train(start, server_round=1)
    assert result.env_steps == STEPS
    assert list(result.weights) == list(start)
    new = list(result.weights.values())
    assert update_norm(new, list(start.values())) > 0
    again = trainer().train(start, server_round=1)
    assert all(np.array_equal(a, b) for a, b in zip(new, again.weights.values(), strict=True))


def test_fedprox_pulls_the_site_back_to_the_global_weights() -> None:
    start = initial()
    free = trainer(strategy="fedavg").train(start, 1).weights
    # lr * mu = 1: each update is undone by the proximal step, the weights stay global
    held = trainer(strategy="fedprox", proximal_mu=1 / 1e-3).train(start, 1).weights
    assert update_norm(list(held.values()), list(start.values())) < 1e-4
    assert update_norm(list(free.values()), list(start.values())) > 1e-2


def test_weights_of_another_network_are_refused() -> None:
    parts = trainer().build(1, seed=0)
    with pytest.raises(ConfigError, match="every site must train the same algorithm"):
        set_weights(parts, {"w": np.zeros(3, np.float32)})


def test_evaluation_plays_the_sites_own_env() -> None:
    returns = trainer().evaluate(initial(), episodes=3, seed=0)
    assert len(returns) == 3
    assert all(r >= 1 for r in returns)
