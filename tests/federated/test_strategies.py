"""The guarded strategies: hostile updates are dropped, DP noise is really added."""

from __future__ import annotations

import numpy as np
import pytest
from flwr.app import (
    Array,
    ArrayRecord,
    ConfigRecord,
    Message,
    MessageType,
    MetricRecord,
    RecordDict,
)

from fleetmind.federated.settings import FederationSettings
from fleetmind.federated.strategies import SiteGuard, build_strategy

SIZE = 20_000


pytestmark = pytest.mark.usefixtures("task_identity")


class FakeGrid:
    """The part of Flower's Grid a strategy's configure_train reads."""

    def __init__(self, nodes: int) -> None:
        self.nodes = list(range(1, nodes + 1))

    def get_node_ids(self) -> list[int]:
        return self.nodes


def reply(weights: np.ndarray) -> Message:
    content = RecordDict(
        {
            "arrays": ArrayRecord({"w": Array(weights.astype(np.float32))}),
            "metrics": MetricRecord({"num-examples": 64.0}),
        }
    )
    return Message(content=content, dst_node_id=1, message_type=MessageType.TRAIN)


def start_round(guard: SiteGuard, sites: int, global_w: np.ndarray) -> None:
    arrays = ArrayRecord({"w": Array(global_w.astype(np.float32))})
    list(guard.configure_train(1, arrays, ConfigRecord(), FakeGrid(sites)))  # type: ignore[arg-type]


def aggregate(guard: SiteGuard, updates: list[np.ndarray]) -> np.ndarray:
    arrays, _ = guard.aggregate_train(1, [reply(u) for u in updates])
    assert arrays is not None
    return arrays["w"].numpy()


def settings(**kw: object) -> FederationSettings:
    base: dict[str, object] = {"env_id": "CartPole-v1", "sites": 3, "rounds": 1}
    return FederationSettings(**{**base, **kw})  # type: ignore[arg-type]


def test_a_site_with_non_finite_weights_is_excluded_and_counted() -> None:
    guard = build_strategy(settings(), None)
    start_round(guard, 3, np.zeros(4))
    hostile = np.array([np.nan, 1.0, np.inf, 0.0])
    out = aggregate(guard, [np.full(4, 1.0), np.full(4, 3.0), hostile])
    np.testing.assert_allclose(out, np.full(4, 2.0))
    stats = guard.rounds[1]
    assert (stats.excluded, stats.replies) == (1, 2)
    assert stats.update_norms == pytest.approx([2.0, 6.0])


def test_the_median_ignores_one_huge_update_that_wrecks_the_mean() -> None:
    honest = [np.full(4, 1.0), np.full(4, 1.1), np.full(4, 0.9)]
    huge = np.full(4, 1e6)
    mean = build_strategy(settings(sites=4), None)
    start_round(mean, 4, np.zeros(4))
    assert aggregate(mean, [*honest, huge]).max() > 1e5
    median = build_strategy(settings(sites=4, strategy="fedmedian"), None)
    start_round(median, 4, np.zeros(4))
    np.testing.assert_allclose(aggregate(median, [*honest, huge]), np.full(4, 1.05), rtol=1e-5)


def test_server_side_dp_clips_each_update_and_adds_noise_of_the_expected_scale() -> None:
    z, clip, sites = 1.0, 0.5, 4
    guard = build_strategy(settings(sites=sites, dp_noise=z, dp_clip=clip), z)
    start_round(guard, sites, np.zeros(SIZE))
    rng = np.random.default_rng(0)
    updates = [rng.normal(0, 1, SIZE) for _ in range(sites)]  # norms ~141, far over C
    out = aggregate(guard, updates)
    clipped_mean = np.mean([u * clip / np.linalg.norm(u) for u in updates], axis=0)
    noise = out - clipped_mean
    assert np.std(noise) == pytest.approx(z * clip / sites, rel=0.05)
    assert abs(np.mean(noise)) < 5 * z * clip / sites / np.sqrt(SIZE)
    assert guard.rounds[1].clipped == sites


def test_without_noise_the_mean_is_exact() -> None:
    guard = build_strategy(settings(sites=2), None)
    start_round(guard, 2, np.zeros(3))
    np.testing.assert_allclose(aggregate(guard, [np.ones(3), 3 * np.ones(3)]), 2 * np.ones(3))
