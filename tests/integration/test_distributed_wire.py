"""The learner service answers bad input with the right status and stays healthy."""

from __future__ import annotations

import queue
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import grpc
import numpy as np
import pytest
from tests.integration.learner_harness import LearnerThread, cartpole_chunk

from fleetmind.core.normalizer import RunningMeanStd
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.generated import training_pb2_grpc as pb_grpc
from fleetmind.rpc.server import ServerConfig
from fleetmind.rpc.training_codec import chunk_pb, tensor_pb
from fleetmind.rpc.weights_codec import WeightAssembler
from fleetmind.runtime.dist_config import DistConfig
from fleetmind.runtime.learner.weight_store import load_weights

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


def exchange(stub: pb_grpc.LearnerStub, *chunks: pb.TrajectoryChunk) -> pb.PushResponse:
    """The answer to the last of ``chunks`` sent up an Exchange stream (sync mode's call)."""
    answers = [r.push for r in stub.Exchange(iter(chunks), timeout=10) if r.HasField("push")]
    return answers[-1]


Send = Callable[..., pb.PushResponse]
both_calls = pytest.mark.parametrize("send", [push, exchange], ids=["push", "exchange"])


def status_of(call: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    error = call.value
    assert isinstance(error, grpc.Call)
    return error.code()


def good(session: pb.RegisterResponse, **changes: object) -> pb.TrajectoryChunk:
    chunk = cartpole_chunk(
        session.session_id,
        session.incarnation,
        secret=session.session_secret,
        version=session.version,
    )
    # The observations' own statistics (the harness's observations are near N(0, 1),
    # as the learner's statistics are).
    chunk.obs_stats = RunningMeanStd.from_data(chunk.trajectories[0].obs.reshape(-1, 4))
    msg = chunk_pb(chunk)
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
        ("obs/0", np.zeros((4, 2, 4), np.float64), "'obs/0' is FP64[4, 2, 4]"),
        ("obs/0", np.zeros((4, 2, 5), np.float32), "'obs/0' is FP32[4, 2, 5]"),
        ("rewards", np.full((4, 2, 1), np.nan, np.float32), "'rewards' holds NaN"),
        ("rewards", np.ones((4, 2), np.float32), "'rewards' is FP32[4, 2]"),
        ("actions/0", np.full((4, 2), 7, np.int64), "actions/0 of agent"),
    ],
)
@both_calls
def test_malformed_tensors_are_invalid_argument(
    stub: pb_grpc.LearnerStub, send: Send, name: str, array: np.ndarray, words: str
) -> None:
    session = register(stub)
    with pytest.raises(grpc.RpcError) as call:
        send(stub, with_tensor(good(session), name, array))
    assert status_of(call) == grpc.StatusCode.INVALID_ARGUMENT
    assert words in str(call.value.details())  # type: ignore[attr-defined]


@both_calls
def test_lengths_that_disagree_are_invalid_argument(stub: pb_grpc.LearnerStub, send: Send) -> None:
    session = register(stub)
    with pytest.raises(grpc.RpcError) as call:
        send(stub, good(session, num_envs=3))
    assert status_of(call) == grpc.StatusCode.INVALID_ARGUMENT
    with pytest.raises(grpc.RpcError) as call:
        send(stub, good(session, num_steps=5))
    assert status_of(call) == grpc.StatusCode.INVALID_ARGUMENT


@pytest.mark.parametrize(
    ("agents", "words"),
    [
        (0, "num_agents=0 but this learner trains 1 agent (agent)"),
        (2, "num_agents=2 but this learner trains 1 agent (agent)"),
    ],
    ids=["zero", "team-of-two"],
)
@both_calls
def test_a_chunk_of_the_wrong_team_size_is_invalid_argument(
    stub: pb_grpc.LearnerStub, send: Send, agents: int, words: str
) -> None:
    # A single agent is a team of one on the wire too: num_agents 0 is refused.
    session = register(stub)
    with pytest.raises(grpc.RpcError) as call:
        send(stub, good(session, num_agents=agents))
    assert status_of(call) == grpc.StatusCode.INVALID_ARGUMENT
    assert words in str(call.value.details())  # type: ignore[attr-defined]


@both_calls
def test_stale_session_or_incarnation_is_failed_precondition(
    stub: pb_grpc.LearnerStub, send: Send
) -> None:
    session = register(stub)
    with pytest.raises(grpc.RpcError) as call:
        send(stub, good(session, incarnation=session.incarnation + 1))
    assert status_of(call) == grpc.StatusCode.FAILED_PRECONDITION
    assert "restarted" in str(call.value.details())  # type: ignore[attr-defined]
    with pytest.raises(grpc.RpcError) as call:
        send(stub, good(session, session_id="nobody"))
    assert status_of(call) == grpc.StatusCode.FAILED_PRECONDITION


def test_errors_quote_a_long_session_id_only_in_part(stub: pb_grpc.LearnerStub) -> None:
    session = register(stub)
    with pytest.raises(grpc.RpcError) as call:
        push(stub, good(session, session_id="s" * 100_000))
    assert status_of(call) == grpc.StatusCode.FAILED_PRECONDITION
    details = str(call.value.details())  # type: ignore[attr-defined]
    assert "unknown or expired session" in details
    assert len(details) < 300


def test_garbage_bytes_are_invalid_argument(learner: LearnerThread) -> None:
    garbage = b"\xff\xff\xff not a message"
    with grpc.insecure_channel(learner.address) as channel:
        call = channel.stream_unary("/fleetmind.v1.Learner/PushTrajectories")
        with pytest.raises(grpc.RpcError) as err:
            call(iter([garbage]), timeout=10)
        assert status_of(err) == grpc.StatusCode.INVALID_ARGUMENT
        stream = channel.stream_stream("/fleetmind.v1.Learner/Exchange")
        with pytest.raises(grpc.RpcError) as err:
            list(stream(iter([garbage]), timeout=10))
        assert status_of(err) == grpc.StatusCode.INVALID_ARGUMENT


@both_calls
def test_oversized_message_is_resource_exhausted(stub: pb_grpc.LearnerStub, send: Send) -> None:
    session = register(stub)
    big = with_tensor(good(session), "obs/0", np.zeros((4, 2, 4), np.float32))
    big.tensors.add(name="padding", datatype="UINT8", shape=[2 * MIB], raw=bytes(2 * MIB))
    with pytest.raises(grpc.RpcError) as call:
        send(stub, big)
    assert status_of(call) == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_learner_stays_healthy_after_bad_input(stub: pb_grpc.LearnerStub) -> None:
    session = register(stub, "after")
    assert push(stub, good(session)).accepted == 1
    stale = good(session, policy_version=max(session.version - 1, 0), seq=1)
    if session.version > 0:  # sync mode: data of an older version is dropped, not trained on
        assert push(stub, stale).dropped == 1
    status = stub.GetStatus(pb.StatusRequest(), timeout=10)
    assert status.mode == "sync"
    assert not status.done
    assert not status.insecure  # loopback: not open to the network


def test_weights_stream_in_chunks_of_the_current_version(stub: pb_grpc.LearnerStub) -> None:
    session = register(stub, "weights")
    request = pb.GetWeightsRequest(
        session_id=session.session_id,
        incarnation=session.incarnation,
        session_secret=session.session_secret,
        have_version=-1,
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
        session_secret=session.session_secret,
    )
    assert list(stub.GetWeights(newer, timeout=10)) == []


def test_run_dir_exists(learner: LearnerThread) -> None:
    assert Path(learner.run.setup.run_dir.path, "config.json").is_file()


def test_exchange_answers_each_chunk_with_the_next_version_and_keeps_the_stream_alive(
    tmp_path: Path,
) -> None:
    # Two actors registered, one sends: the sync update waits sync_timeout_s for the
    # other, and meanwhile the stream carries the keep-alive every second.
    dist = DistConfig(sync_timeout_s=2.5)
    with (
        LearnerThread(tmp_path / "run", dist=dist, steps=16) as learner,
        grpc.insecure_channel(learner.address) as channel,
    ):
        stub = pb_grpc.LearnerStub(channel)
        first = register(stub, "first")
        register(stub, "silent")
        requests: queue.SimpleQueue[pb.TrajectoryChunk | None] = queue.SimpleQueue()
        stream = stub.Exchange(iter(requests.get, None), timeout=30)
        requests.put(good(first))
        answers: list[tuple[float, pb.ExchangeResponse]] = []
        sent = time.monotonic()
        assembler = WeightAssembler()
        while not assembler.complete:
            answer = next(stream)
            answers.append((time.monotonic() - sent, answer))
            if answer.HasField("weights"):
                assembler.add(answer.weights)
        ticks = [t for t, a in answers if not a.ByteSize()]
        when, answer = next((t, a) for t, a in answers if a.HasField("push"))
        assert ticks  # one a second while the update waited
        assert max(ticks) < when
        assert when >= 2.4  # the update went ahead without the silent actor after 2.5 s
        assert answer.push.accepted == 1
        assert answer.HasField("weights")  # the answer carries the version's first chunk
        assert answer.push.version == answer.weights.version == first.version + 1
        load_weights(learner.run.core.module, assembler.weights())
        # The next update reaches the step target; the chunk after it is answered done.
        version, rounds = answer.push.version, 0
        while True:
            requests.put(good(first, policy_version=version, seq=rounds + 1))
            reply = next(r for r in stream if r.HasField("push"))
            rounds += 1
            if reply.push.done:
                break
            version = reply.push.version
        assert rounds == 2
        assert not reply.HasField("weights")
        requests.put(None)
