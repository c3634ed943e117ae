"""A team learner checks every team chunk, in sync and async mode: bad ones get
INVALID_ARGUMENT, it stays up."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Literal

import grpc
import numpy as np
import pytest
from tests.integration.learner_harness import LearnerThread

from fleetmind.algos.team.config import TeamImpalaConfig
from fleetmind.algos.team.mappo import MAPPOConfig
from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.generated import training_pb2_grpc as pb_grpc
from fleetmind.rpc.learner_client import session_info
from fleetmind.rpc.training_codec import chunk_pb, stats_pb, tensor_np, tensor_pb
from fleetmind.runtime.actor.source import ActorSource
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.dist_config import DistConfig
from fleetmind.runtime.learner.run import LearnerRun
from fleetmind.runtime.learner.run_setup import RunSetup
from fleetmind.runtime.local import prepare_new

ENV = "fleetmind/coordination-v0"


def team_learner(run_dir: Path, mode: Literal["sync", "async"] = "sync") -> LearnerThread:
    """A MAPPO (sync) or team IMPALA (async) learner of the coordination game on a real
    port, in a thread."""
    algo_name = "mappo" if mode == "sync" else "team-impala"
    config = TrainConfig(env_id=ENV, algo=algo_name, run_dir=run_dir, steps=10**9, envs=2)
    algo: MAPPOConfig | TeamImpalaConfig = (
        MAPPOConfig(rollout_steps=4, update_epochs=1, minibatch_size=8)
        if mode == "sync"
        else TeamImpalaConfig(rollout_steps=4, sgd_steps=1)
    )
    run = LearnerRun(RunSetup(*prepare_new(config, algo)), DistConfig(mode=mode), False)
    return LearnerThread(run_dir, run=run)


@pytest.fixture(scope="module", params=["sync", "async"])
def learner(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[LearnerThread]:
    with team_learner(tmp_path_factory.mktemp("team") / "run", request.param) as running:
        yield running


@pytest.fixture(scope="module")
def stub(learner: LearnerThread) -> Iterator[pb_grpc.LearnerStub]:
    channel = grpc.insecure_channel(learner.address)
    yield pb_grpc.LearnerStub(channel)
    channel.close()


@pytest.fixture(scope="module")
def source(stub: pb_grpc.LearnerStub) -> Iterator[ActorSource]:
    session = stub.Register(pb.RegisterRequest(actor_id="probe", num_envs=2), timeout=10)
    team = ActorSource(session_info(session), 2)
    yield team
    team.close()


def fresh_chunk(stub: pb_grpc.LearnerStub, source: ActorSource) -> pb.TrajectoryChunk:
    """A real team chunk of the current version, from a freshly registered session."""
    session = stub.Register(pb.RegisterRequest(actor_id="probe", num_envs=2), timeout=10)
    source.collect(int(session.version))
    return chunk_pb(source.chunk(session_info(session), {}))


def replace(msg: pb.TrajectoryChunk, name: str, array: np.ndarray) -> None:
    tensors = [tensor_pb(array, name) if t.name == name else t for t in msg.tensors]
    del msg.tensors[:]
    msg.tensors.extend(tensors)


def tensor(msg: pb.TrajectoryChunk, name: str) -> np.ndarray:
    return np.array(next(tensor_np(t) for t in msg.tensors if t.name == name))


def test_a_real_team_chunk_is_accepted(stub: pb_grpc.LearnerStub, source: ActorSource) -> None:
    msg = fresh_chunk(stub, source)
    names = {t.name for t in msg.tensors}
    assert {"obs/0", "obs/1", "actions/0", "actions/1", "state", "rewards"} <= names
    assert tensor(msg, "rewards").shape == (4, 2, 2)  # [T x E x agents]
    reply = stub.PushTrajectories(iter([msg]), timeout=10)
    assert reply.accepted == 1


def _nan_obs(msg: pb.TrajectoryChunk) -> None:
    obs = tensor(msg, "obs/1")
    obs[0, 0, 0] = np.nan
    replace(msg, "obs/1", obs)


def _bad_action(msg: pb.TrajectoryChunk) -> None:
    actions = tensor(msg, "actions/1")
    actions[2, 1] = 99
    replace(msg, "actions/1", actions)


def _wrong_agent_axis(msg: pb.TrajectoryChunk) -> None:
    replace(msg, "values", np.zeros((4, 2, 3), np.float32))


def _wrong_state(msg: pb.TrajectoryChunk) -> None:
    state = tensor(msg, "state")
    replace(msg, "state", np.zeros((*state.shape[:2], state.shape[2] + 1), np.float32))


def _missing_agent(msg: pb.TrajectoryChunk) -> None:
    kept = [t for t in msg.tensors if t.name != "obs/1"]
    del msg.tensors[:]
    msg.tensors.extend(kept)


def _agent_count(msg: pb.TrajectoryChunk) -> None:
    msg.num_agents = 3


def _single_agent(msg: pb.TrajectoryChunk) -> None:
    msg.num_agents = 0


def _agent_returns(msg: pb.TrajectoryChunk) -> None:
    msg.episode_returns.append(1.0)
    msg.episode_lengths.append(10)


def _stray_stats(msg: pb.TrajectoryChunk) -> None:
    # The coordination game's observations are one-hot: nothing is normalised.
    msg.obs_stats.CopyFrom(stats_pb(RunningMeanStd.from_data(np.zeros((3, 5)))))


@pytest.mark.parametrize(
    ("spoil", "words"),
    [
        (_nan_obs, "'obs/1' holds NaN"),
        (_bad_action, "actions/1 of agent agent_1 must lie in [0, 3)"),
        (_wrong_agent_axis, "tensor 'values' is FP32[4, 2, 3]; expected FP32[4, 2, 2]"),
        (_wrong_state, "tensor 'state'"),
        (_missing_agent, "must be exactly"),
        (_agent_count, "num_agents=3 but this learner trains 2 agents (agent_0, agent_1)"),
        (_single_agent, "num_agents=0 but this learner trains 2 agents (agent_0, agent_1)"),
        (_agent_returns, "agent_episode_returns"),
        (_stray_stats, "obs_stats sent but this learner normalises no"),
    ],
)
def test_bad_team_chunks_get_invalid_argument(
    stub: pb_grpc.LearnerStub,
    source: ActorSource,
    spoil: Callable[[pb.TrajectoryChunk], None],
    words: str,
) -> None:
    msg = fresh_chunk(stub, source)
    spoil(msg)
    with pytest.raises(grpc.RpcError) as call:
        stub.PushTrajectories(iter([msg]), timeout=10)
    error = call.value
    assert isinstance(error, grpc.Call)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert words in (error.details() or "")
    assert stub.GetStatus(pb.StatusRequest(), timeout=10).live_actors >= 0  # still serving
