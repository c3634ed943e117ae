"""Pieces of distributed training without a network: weights, statistics, backoff, wire.

Chunks on the wire are tested in test_chunk_format.py (single agent and teams alike)."""

from __future__ import annotations

import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.algos.ppo.learner import PPOLearner
from fleetmind.core.errors import ConfigError, InvalidInputError
from fleetmind.core.exchange import Weights
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.core.spaces import SpaceSpec
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.training_codec import stage_times
from fleetmind.rpc.weights_codec import DEFAULT_CHUNK_BYTES, WeightAssembler, encode_weights
from fleetmind.runtime.actor import tracking_stats
from fleetmind.runtime.actor.tracking_stats import TrackingStats
from fleetmind.runtime.actor.worker import Backoff
from fleetmind.runtime.dist_config import ActorConfig, DistConfig, apply_env
from fleetmind.runtime.learner.weight_store import WeightStore, load_weights

OBS = SpaceSpec("box", (4,), "float32", low=(-1.0,) * 4, high=(1.0,) * 4)
ACT = SpaceSpec("discrete", (), "int64", n=2)


def encoded(version: int, module: nn.Module, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
            stats: RunningMeanStd | None = None) -> list[pb.WeightsChunk]:  # fmt: skip
    """The wire messages of one published version."""
    store = WeightStore()
    store.set_encoder(lambda weights: encode_weights(weights, chunk_bytes))
    published = store.publish(version, module, stats)
    return [pb.WeightsChunk.FromString(m) for m in published.wire]


def assembled(messages: list[pb.WeightsChunk]) -> Weights:
    assembler = WeightAssembler()
    for msg in messages:
        assembler.add(msg)
    return assembler.weights()


def test_weights_round_trip_in_many_chunks() -> None:
    torch.manual_seed(0)
    source, target = nn.Linear(50, 40), nn.Linear(50, 40)
    stats = RunningMeanStd.from_data(np.arange(12.0).reshape(3, 4))
    store = WeightStore()
    store.set_encoder(lambda weights: encode_weights(weights, 1000))
    published = store.publish(7, source, stats)
    messages = [pb.WeightsChunk.FromString(m) for m in published.wire]
    assert len(messages) > 5
    got = assembled(messages)
    assert got.version == 7
    assert got.sha256 == published.sha256  # the same hash as the learner's own copy
    load_weights(target, got)
    assert torch.equal(source.weight, target.weight)
    assert got.obs_stats is not None
    np.testing.assert_allclose(got.obs_stats.mean, stats.mean)


def test_weights_are_serialised_once_per_version() -> None:
    calls: list[int] = []

    def encode(weights: Weights) -> tuple[bytes, ...]:
        calls.append(weights.version)
        return encode_weights(weights)

    store = WeightStore()
    store.set_encoder(encode)
    first = store.publish(1, nn.Linear(3, 3), None)
    wire = first.wire
    assert store.latest() is first
    assert store.latest() is first
    assert first.wire is wire
    assert calls == [1]


def test_an_encoder_attached_late_encodes_the_latest_version_once() -> None:
    store = WeightStore()
    first = store.publish(1, nn.Linear(3, 3), None)
    assert first.wire is None
    store.set_encoder(encode_weights)
    assert first.wire is not None
    assert store.publish(2, nn.Linear(3, 3), None).wire is not None


def test_cut_or_corrupt_weight_streams_are_refused() -> None:
    messages = encoded(1, nn.Linear(10, 10), chunk_bytes=100)
    cut = WeightAssembler()
    cut.add(messages[0])
    assert not cut.complete
    with pytest.raises(InvalidInputError, match="cut short"):
        cut.weights()
    skipped = WeightAssembler()
    skipped.add(messages[0])
    with pytest.raises(InvalidInputError, match="offset"):
        skipped.add(messages[2])
    with pytest.raises(InvalidInputError, match="manifest"):
        WeightAssembler().add(messages[1])
    whole = assembled(messages)
    with pytest.raises(InvalidInputError, match="names"):
        load_weights(nn.Linear(10, 11, bias=False), whole)


def test_weight_streams_that_lie_about_their_size_or_bytes_are_refused() -> None:
    messages = encoded(1, nn.Linear(10, 10), chunk_bytes=100)
    short = pb.WeightsChunk()
    short.CopyFrom(messages[0])
    short.total_bytes = 50  # announces less than the stream carries
    with pytest.raises(InvalidInputError, match="run past"):
        WeightAssembler().add(short)
    flipped = pb.WeightsChunk()
    flipped.CopyFrom(messages[-1])
    flipped.data = bytes(b ^ 0xFF for b in flipped.data)
    with pytest.raises(InvalidInputError, match="SHA-256"):
        assembled([*messages[:-1], flipped])


def test_loaded_weights_do_not_alias_the_received_buffer() -> None:
    source, target = nn.Linear(6, 5), nn.Linear(6, 5)
    weights = assembled(encoded(3, source, chunk_bytes=64))
    load_weights(target, weights)
    with torch.no_grad():
        target.weight.add_(1.0)
    fresh = nn.Linear(6, 5)
    load_weights(fresh, weights)
    assert torch.equal(fresh.weight, source.weight)


def test_actor_deltas_merged_at_the_learner_equal_the_pooled_statistics() -> None:
    rng = np.random.default_rng(1)
    shards = [rng.normal(i, 1 + i, size=(50 + 10 * i, 3)) for i in range(3)]
    merged = RunningMeanStd((3,))
    for shard in shards:
        local = TrackingStats((3,))
        for part in np.array_split(shard, 4):
            local.update(part)
        merged.merge(local.take_delta())
    pooled = RunningMeanStd.from_data(np.concatenate(shards))
    np.testing.assert_allclose(merged.mean, pooled.mean)
    np.testing.assert_allclose(merged.var, pooled.var)
    assert merged.count == pooled.count


def test_a_long_unsent_delta_is_folded_and_stays_exact(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(tracking_stats, "UNSENT_BATCHES", 3)
    rng = np.random.default_rng(2)
    parts = [rng.normal(5.0, 2.0, size=(4, 2)) for _ in range(10)]
    local = TrackingStats((2,))
    for part in parts:
        local.update(part)
    assert len(local._unsent) < 3  # folded on the way
    seen = local.count
    delta = local.take_delta()
    pooled = RunningMeanStd.from_data(np.concatenate(parts))
    np.testing.assert_allclose(delta.mean, pooled.mean)
    np.testing.assert_allclose(delta.var, pooled.var)
    assert delta.count == pooled.count == seen
    assert local.take_delta().count == 0


def test_adopted_statistics_keep_what_is_not_yet_sent() -> None:
    local = TrackingStats((2,))
    local.update(np.ones((4, 2)))
    local.adopt(RunningMeanStd.from_data(np.zeros((4, 2))))
    np.testing.assert_allclose(local.mean, [0.5, 0.5])
    assert local.count == 8


def test_a_sent_delta_leaves_the_view_at_the_adopted_statistics() -> None:
    # The learner rebuilds a chunk's view from its version's statistics and the chunk's
    # own rows, so rows sent under the same version must not stay in the view.
    adopted = RunningMeanStd.from_data(np.zeros((4, 2)))
    local = TrackingStats((2,))
    local.adopt(adopted)
    local.update(np.ones((4, 2)))
    local.take_delta()
    np.testing.assert_allclose(local.mean, adopted.mean)
    np.testing.assert_allclose(local.var, adopted.var)
    assert local.count == adopted.count


def test_backoff_grows_with_full_jitter_and_caps() -> None:
    backoff = Backoff(0.1, 2.0, rng=random.Random(0))
    waits = [backoff.wait_s() for _ in range(12)]
    assert all(0.0 <= w <= 2.0 for w in waits)
    assert max(waits[:2]) <= 0.2
    assert len(set(waits)) == len(waits)
    backoff.reset()
    assert backoff.wait_s() <= 0.1


def test_ppo_learner_loads_broadcast_weights() -> None:
    learner = PPOLearner(PPOConfig(), OBS, ACT, seed=1)
    copy = PPOLearner(PPOConfig(), OBS, ACT, seed=2)
    load_weights(copy.net, assembled(encoded(3, learner.net)))
    x = np.zeros((1, 4), np.float32)
    np.testing.assert_allclose(
        learner.rollout_policy().step(x).values, copy.rollout_policy().step(x).values
    )


def test_actor_settings_come_from_the_environment() -> None:
    env = {"FLEETMIND_LEARNER": "10.0.0.5:50051", "FLEETMIND_ENVS": "4", "FLEETMIND_TOKEN": "t"}
    config = apply_env(ActorConfig(), set(), env)
    assert (config.learner, config.envs, config.token) == ("10.0.0.5:50051", 4, "t")
    flagged = apply_env(ActorConfig(envs=2), {"envs"}, env)
    assert flagged.envs == 2
    with pytest.raises(ConfigError, match="FLEETMIND_ENVS"):
        apply_env(ActorConfig(), set(), {"FLEETMIND_ENVS": "many"})


@pytest.mark.parametrize(
    "bad",
    [DistConfig(actors=-1), DistConfig(learners=0), DistConfig(max_policy_lag=-2),
     DistConfig(metrics_port=70000), DistConfig(sync_timeout_s=0)],
)  # fmt: skip
def test_bad_distributed_settings_are_config_errors(bad: DistConfig) -> None:
    with pytest.raises(ConfigError):
        bad.validate()


def test_vtrace_on_policy_equals_lambda_one_returns() -> None:
    from fleetmind.algos.impala.vtrace import vtrace
    from fleetmind.algos.ppo.learner import compute_gae

    rng = np.random.default_rng(3)
    shape = (6, 3)
    rewards = rng.normal(size=shape).astype(np.float32)
    values = rng.normal(size=shape).astype(np.float32)
    next_values = np.roll(values, -1, axis=0)
    next_values[-1] = rng.normal(size=3)
    terminated = np.zeros(shape, bool)
    terminated[2, 0] = True
    truncated = np.zeros(shape, bool)
    truncated[4, 1] = True
    next_values[4, 1] = 5.0  # value of the final observation of the truncated episode
    vs, _ = vtrace(np.zeros(shape), rewards, values, next_values, terminated, truncated, 0.9)
    _, returns = compute_gae(rewards, values, next_values, terminated, truncated, 0.9, 1.0)
    np.testing.assert_allclose(vs, returns, rtol=1e-5, atol=1e-5)


def test_vtrace_clips_importance_ratios() -> None:
    from fleetmind.algos.impala.vtrace import vtrace

    shape = (3, 1)
    ones, zeros = np.ones(shape, np.float32), np.zeros(shape, np.float32)
    flags = np.zeros(shape, bool)
    _, adv_big = vtrace(np.full(shape, 5.0), ones, zeros, zeros, flags, flags, 0.9)
    _, adv_one = vtrace(np.zeros(shape), ones, zeros, zeros, flags, flags, 0.9)
    np.testing.assert_allclose(adv_big, adv_one)


def test_prometheus_exporter_serves_report_fields() -> None:
    import urllib.request

    from fleetmind.rpc.metrics_http import MetricsPageConfig
    from fleetmind.runtime.metrics import PrometheusExporter

    exporter = PrometheusExporter(MetricsPageConfig(0, host="127.0.0.1"))
    try:
        exporter.update({"version": 7, "queue_depth": 2, "actor_a-1_steps_per_s": 123.0, "x": "s"})
        url = f"http://127.0.0.1:{exporter.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as reply:
            text = reply.read().decode()
    finally:
        exporter.close()
    assert "fleetmind_learner_version 7.0" in text
    assert 'fleetmind_learner_actor_steps_per_s{actor="a-1"} 123.0' in text


def test_stage_times_count_negative_or_non_finite_values_as_zero() -> None:
    msg = pb.StageTimes(env=1.5, inference=-1.0, rpc=float("nan"), push=float("inf"), wait=0.25)
    assert stage_times(msg) == {"env": 1.5, "inference": 0.0, "rpc": 0.0, "push": 0.0, "wait": 0.25}


def test_a_forked_actor_gets_the_settings_of_its_command(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fleetmind.runtime.launch.actor_pool import ActorPool

    pool = ActorPool(2, 4, tmp_path)
    pool.addresses = ["unix:/tmp/a.sock", "unix:/tmp/b.sock"]
    monkeypatch.setenv("FLEETMIND_PUSH_QUEUE", "0")
    monkeypatch.setenv("FLEETMIND_ENVS", "99")  # the launcher's own value wins, as a flag does
    config = pool.actor_config(1)
    assert (config.learner, config.envs, config.actor_id) == ("unix:/tmp/b.sock", 4, "actor-1")
    assert config.push_queue == 0
    assert pool.command(1)[3:] == [
        "--log-level", "WARNING", "actor", "--learner", "unix:/tmp/b.sock",
        "--envs", "4", "--actor-id", "actor-1",
    ]  # fmt: skip
