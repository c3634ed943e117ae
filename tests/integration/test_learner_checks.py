"""A learner over real gRPC refuses chunks whose episodes or statistics disagree with
their own data (INVALID_ARGUMENT naming the field) and accepts honest actors'."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from tests.integration.learner_harness import LearnerThread, cartpole_chunk
from tests.integration.test_distributed_team_wire import ENV as TEAM_ENV

from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.algos.team.mappo import MAPPOConfig
from fleetmind.core.exchange import Chunk, Episode
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.rpc.channel import ChannelConfig
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.generated import training_pb2_grpc as pb_grpc
from fleetmind.rpc.learner_client import GrpcLearnerClient
from fleetmind.rpc.training_codec import chunk_pb
from fleetmind.runtime.actor.source import ActorSource
from fleetmind.runtime.actor.worker import ActorWorker
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import ActorConfig, DistConfig
from fleetmind.runtime.learner.run import LearnerRun
from fleetmind.runtime.learner.run_setup import RunSetup
from fleetmind.runtime.local import prepare_new


@pytest.fixture(scope="module")
def learner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LearnerThread]:
    """A CartPole learner whose statistics already hold 10 000 observations of N(0, 1)
    (as after earlier chunks): the harness's observations are near N(0, 1) too."""
    run_dir = tmp_path_factory.mktemp("checks") / "run"
    config = TrainConfig(env_id="CartPole-v1", run_dir=run_dir, steps=10**9, envs=2)
    algo = PPOConfig(rollout_steps=4, update_epochs=1, minibatch_size=8)
    run = LearnerRun(RunSetup(*prepare_new(config, algo)), DistConfig(), progress=False)
    seen = np.random.default_rng(1).standard_normal((10_000, 4))
    run.core.merge_stats(RunningMeanStd.from_data(seen))
    run.core.publish()
    with LearnerThread(run_dir, run=run) as running:
        yield running


@pytest.fixture
def stub(learner: LearnerThread) -> Iterator[pb_grpc.LearnerStub]:
    channel = grpc.insecure_channel(learner.address)
    yield pb_grpc.LearnerStub(channel)
    channel.close()


def chunk_of(stub: pb_grpc.LearnerStub, seq: int = 0, **ended: int) -> tuple[Chunk, str, int]:
    """A chunk of a new session (or ``seq`` of it) with its honest statistics; copy
    ``ended["env"]`` terminates at step ``ended["step"]`` when given."""
    session = stub.Register(pb.RegisterRequest(actor_id="c", num_envs=2), timeout=10)
    chunk = cartpole_chunk(
        session.session_id,
        session.incarnation,
        secret=session.session_secret,
        version=session.version,
    )
    chunk.seq = seq
    obs = chunk.trajectories[0].obs
    chunk.obs_stats = RunningMeanStd.from_data(obs.reshape(-1, 4).astype(np.float64))
    if ended:
        chunk.trajectories[0].terminated[ended["step"], ended["env"]] = True
    return chunk, session.session_id, session.incarnation


def refused(stub: pb_grpc.LearnerStub, chunk: Chunk | pb.TrajectoryChunk) -> str:
    """The message of the INVALID_ARGUMENT that pushing ``chunk`` gets."""
    msg = chunk_pb(chunk) if isinstance(chunk, Chunk) else chunk
    with pytest.raises(grpc.RpcError) as call:
        stub.PushTrajectories(iter([msg]), timeout=10)
    error = call.value
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    return str(error.details())


def test_an_honest_chunk_with_an_episode_is_accepted(stub: pb_grpc.LearnerStub) -> None:
    chunk, _, _ = chunk_of(stub, step=3, env=0)
    chunk.episodes = [Episode(4.0, 4, (4.0,))]
    assert stub.PushTrajectories(iter([chunk_pb(chunk)]), timeout=10).accepted == 1


@pytest.mark.parametrize(
    ("episode", "field"),
    [
        (Episode(4000.0, 4, (4000.0,)), "episode_returns[0]=4000"),
        (Episode(4.0, 9, (4.0,)), "episode_lengths[0]=9"),
        (Episode(4.0, 4, (5.0,)), "agent_episode_returns[0]=5"),
    ],
    ids=["inflated-return", "wrong-length", "wrong-agent-return"],
)
def test_an_episode_that_disagrees_with_the_rewards_is_refused(
    stub: pb_grpc.LearnerStub, episode: Episode, field: str
) -> None:
    chunk, _, _ = chunk_of(stub, step=3, env=0)
    chunk.episodes = [episode]
    assert field in refused(stub, chunk)


def test_an_episode_that_did_not_end_is_refused(stub: pb_grpc.LearnerStub) -> None:
    chunk, _, _ = chunk_of(stub)  # no done flag anywhere
    chunk.episodes = [Episode(8.0, 4, (8.0,))]
    assert "episode_returns holds 1 episodes but the chunk's done flags end 0" in refused(
        stub, chunk
    )


def test_an_episode_over_chunk_boundaries_is_summed_across_them(stub: pb_grpc.LearnerStub) -> None:
    first, session, incarnation = chunk_of(stub)
    assert stub.PushTrajectories(iter([chunk_pb(first)]), timeout=10).accepted == 1
    second = cartpole_chunk(
        session, incarnation, secret=first.session_secret, version=first.policy_version
    )
    second.seq = 1
    second.trajectories[0].terminated[1, 1] = True  # copy 1 ends at its 6th step
    second.episodes = [Episode(2.0, 2, (2.0,))]  # what the second chunk alone holds
    assert "episode_lengths[0]=2 but the chunk's valid rows give 6 steps" in refused(stub, second)
    second.episodes = [Episode(6.0, 6, (6.0,))]
    reply = stub.PushTrajectories(iter([chunk_pb(second)]), timeout=10)
    assert reply.accepted + reply.dropped == 1
    again = chunk_pb(second)  # the same chunk once more
    assert "seq=1 was already received" in refused(stub, again)


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"count": 3.0}, "obs_stats.count=3"),
        ({"mean": 50.0}, "obs_stats.mean[0]"),
        ({"var": 1e6}, "obs_stats.var[0]"),
    ],
    ids=["count", "mean", "var"],
)
def test_statistics_that_disagree_with_the_observations_are_refused(
    stub: pb_grpc.LearnerStub, change: dict[str, float], field: str
) -> None:
    chunk, _, _ = chunk_of(stub)
    stats = chunk.obs_stats
    assert stats is not None
    if "count" in change:
        stats.count = change["count"]
    if "mean" in change:
        stats.mean = stats.mean + change["mean"]
    if "var" in change:
        stats.var = stats.var * change["var"]
    assert field in refused(stub, chunk)


def test_scaled_rewards_are_summed_from_the_raw_ones_sent(stub: pb_grpc.LearnerStub) -> None:
    chunk, _, _ = chunk_of(stub, step=3, env=0)
    chunk.raw_rewards = np.ones((4, 2, 1), np.float32)
    assert "raw_rewards sent but this run does not scale rewards" in refused(stub, chunk)


def honest_learner(run_dir: Path, team: bool) -> LearnerThread:
    env, name = (TEAM_ENV, "mappo") if team else ("CartPole-v1", "ppo")
    config = TrainConfig(env_id=env, algo=name, run_dir=run_dir, steps=1600, envs=2)
    algo = (MAPPOConfig if team else PPOConfig)(rollout_steps=8, update_epochs=1, minibatch_size=8)
    run = LearnerRun(RunSetup(*prepare_new(config, algo)), DistConfig(), progress=False)
    return LearnerThread(run_dir, run=run)


@pytest.mark.parametrize("team", [False, True], ids=["agent", "team"])
def test_an_honest_actors_multi_chunk_episodes_are_accepted(tmp_path: Path, team: bool) -> None:
    with honest_learner(tmp_path / "run", team) as learner:
        client = GrpcLearnerClient(learner.address, ChannelConfig(), None, 10.0)
        actor = ActorConfig(learner=learner.address, actor_id="honest", envs=2)
        worker = ActorWorker(actor, client, own_process=False)
        errors: list[BaseException] = []

        def work() -> None:
            try:
                worker.run()
            except BaseException as exc:  # an INVALID_ARGUMENT would end the actor here
                errors.append(exc)

        thread = threading.Thread(target=work)
        thread.start()
        thread.join(120)
        client.close()
        assert not thread.is_alive()
    assert errors == []
    core = learner.run.core
    assert core.env_steps >= 1600
    assert core.stats.episodes > 0
    assert max(core.stats.lengths) > 8  # episodes that spanned several chunks
    source = worker.source
    assert isinstance(source, ActorSource)
    assert core.stats.episodes <= source.collector.stats.episodes  # the ones it reported
