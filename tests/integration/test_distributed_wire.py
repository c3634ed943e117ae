"""The learner service answers bad input with the right status and stays healthy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from tests.integration.learner_harness import LearnerThread, trajectory

from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.generated import training_pb2_grpc as pb_grpc
from fleetmind.rpc.server import ServerConfig
from fleetmind.runtime.wire import chunk_pb, tensor_pb

MIB = 1024 * 1024


@pytest.fixture(scope="module")
def learner(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LearnerThread]:
    config = ServerConfig(max_message_bytes=1 * MIB, reflection=False)
    with LearnerThread(tmp_path_factory.mktemp("run") / "run", config) as running:
        yield running


@pytest.fixture
def stub(learner: LearnerThread) -> Iterator[pb_grpc.LearnerStub]:
    channel = grpc.insecure_channel(
        learner.address, options=[("grpc.max_send_message_length", 8 * MIB)]
    )
    yield pb_grpc.LearnerStub(channel)
    channel.close()


def register(stub: pb_grpc.LearnerStub, name: str = "t") -> pb.RegisterResponse:
    return stub.Register(pb.RegisterRequest(actor_id=name, num_envs=2), timeout=10)


def push(stub: pb_grpc.LearnerStub, *chunks: pb.TrajectoryChunk) -> pb.PushResponse:
    return stub.PushTrajectories(iter(chunks), timeout=10)


def status_of(call: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    error = call.value
    assert isinstance(error, grpc.Call)
    return error.code()


def good(session: pb.RegisterResponse, **changes: object) -> pb.TrajectoryChunk:
    stats = RunningMeanStd.from_data(np.zeros((3, 4)))
    data = trajectory(version=session.version)
    msg = chunk_pb(data, session.session_id, session.incarnation, stats)
    for key, value in changes.items():
        setattr(msg, key, value)
    return msg


def with_tensor(msg: pb.TrajectoryChunk, name: str, array: np.ndarray) -> pb.TrajectoryChunk:
    tensors = [tensor_pb(array, name) if t.name == name else t for t in msg.tensors]
    del msg.tensors[:]
    msg.tensors.extend(tensors)
    return msg


def test_good_chunk_is_accepted_and_trained_on(stub: pb_grpc.LearnerStub) -> None:
    session = register(stub)
    reply = push(stub, good(session))
    assert reply.accepted == 1
    assert reply.dropped == 0


@pytest.mark.parametrize(
    ("name", "array", "words"),
    [
        ("obs", np.zeros((4, 2, 4), np.float64), "obs"),
        ("obs", np.zeros((4, 2, 5), np.float32), "obs"),
        ("rewards", np.full((4, 2), np.nan, np.float32), "NaN"),
        ("actions", np.full((4, 2), 7, np.int64), "actions"),
    ],
)
def test_malformed_tensors_are_invalid_argument(
    stub: pb_grpc.LearnerStub, name: str, array: np.ndarray, words: str
) -> None:
    session = register(stub)
    with pytest.raises(grpc.RpcError) as call:
        push(stub, with_tensor(good(session), name, array))
    assert status_of(call) == grpc.StatusCode.INVALID_ARGUMENT
    assert words in str(call.value.details())  # type: ignore[attr-defined]


def test_lengths_that_disagree_are_invalid_argument(stub: pb_grpc.LearnerStub) -> None:
    session = register(stub)
    with pytest.raises(grpc.RpcError) as call:
        push(stub, good(session, num_envs=3))
    assert status_of(call) == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as call:
        push(stub, good(session, num_steps=5))
    assert status_of(call) == grpc.StatusCode.INVALID_ARGUMENT


def test_stale_session_or_incarnation_is_failed_precondition(stub: pb_grpc.LearnerStub) -> None:
    session = register(stub)
    with pytest.raises(grpc.RpcError) as call:
        push(stub, good(session, incarnation=session.incarnation + 1))
    assert status_of(call) == grpc.StatusCode.FAILED_PRECONDITION
    assert "restarted" in str(call.value.details())  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as call:
        push(stub, good(session, session_id="nobody"))
    assert status_of(call) == grpc.StatusCode.FAILED_PRECONDITION


def test_garbage_bytes_are_invalid_argument(learner: LearnerThread) -> None:
    with grpc.insecure_channel(learner.address) as channel:
        call = channel.stream_unary("/fleetmind.v1.Learner/PushTrajectories")
        with pytest.raises(grpc.RpcError) as err:
            call(iter([b"\xff\xff\xff not a message"]), timeout=10)
    assert status_of(err) == grpc.StatusCode.INVALID_ARGUMENT


def test_oversized_message_is_resource_exhausted(stub: pb_grpc.LearnerStub) -> None:
    session = register(stub)
    big = with_tensor(good(session), "obs", np.zeros((4, 2, 4), np.float32))
    big.tensors.add(name="padding", datatype="UINT8", shape=[2 * MIB], raw=bytes(2 * MIB))
    with pytest.raises(grpc.RpcError) as call:
        push(stub, big)
    assert status_of(call) == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_learner_stays_healthy_after_bad_input(stub: pb_grpc.LearnerStub) -> None:
    session = register(stub, "after")
    assert push(stub, good(session)).accepted == 1
    stale = good(session, policy_version=max(session.version - 1, 0))
    if session.version > 0:  # sync mode: data of an older version is dropped, not trained on
        assert push(stub, stale).dropped == 1
    status = stub.GetStatus(pb.StatusRequest(), timeout=10)
    assert status.mode == "sync"
    assert not status.done


def test_weights_stream_in_chunks_of_the_current_version(stub: pb_grpc.LearnerStub) -> None:
    session = register(stub, "weights")
    request = pb.GetWeightsRequest(
        session_id=session.session_id, incarnation=session.incarnation, have_version=-1
    )
    chunks = list(stub.GetWeights(request, timeout=10))
    assert chunks
    assert chunks[0].manifest
    assert sum(len(c.data) for c in chunks) == chunks[0].total_bytes
    newer = pb.GetWeightsRequest(
        session_id=session.session_id,
        incarnation=session.incarnation,
        have_version=chunks[0].version + 1000,
        wait_s=0.0,
    )
    assert list(stub.GetWeights(newer, timeout=10)) == []


def test_run_dir_exists(learner: LearnerThread) -> None:
    assert Path(learner.run.setup.run_dir.path, "config.json").is_file()
