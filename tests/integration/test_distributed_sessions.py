"""A session belongs to the actor that registered it: knowing its actor id or its
session id (both appear in logs) is not enough to end it, feed it or read through it."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import pytest
from tests.integration.learner_harness import LearnerThread, cartpole_chunk

from fleetmind.core.exchange import SessionInfo
from fleetmind.rpc.channel import ChannelConfig
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.generated import training_pb2_grpc as pb_grpc
from fleetmind.rpc.learner_client import GrpcLearnerClient
from fleetmind.rpc.training_codec import chunk_pb
from fleetmind.runtime.actor.worker import ActorWorker
from fleetmind.runtime.dist_config import ActorConfig, DistConfig
from fleetmind.runtime.learner.session import Session

REAL_ENVS = 2
"""The real actor's env copies; the intruder registers with 1, so the learner can tell
whose registration it counts."""


def count_registrations(learner: LearnerThread) -> list[tuple[str, int]]:
    """(actor id, num_envs) of every session the learner opens from now on."""
    core = learner.run.core
    opened: list[tuple[str, int]] = []
    register: Callable[[str, str, int], Session] = core.register

    def counting(actor_id: str, env_id: str, num_envs: int) -> Session:
        opened.append((actor_id, num_envs))
        return register(actor_id, env_id, num_envs)

    core.register = counting  # type: ignore[method-assign]
    return opened


@contextmanager
def running_actor(address: str) -> Iterator[ActorWorker]:
    """A real actor (gRPC client, env copies, policy) in a thread until the block ends."""
    client = GrpcLearnerClient(address, ChannelConfig(), timeout_s=10)
    config = ActorConfig(learner=address, actor_id="actor-0", envs=REAL_ENVS, heartbeat_s=0.2)
    worker = ActorWorker(config, client, own_process=False)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop.set()
        thread.join(30)
        client.close()


def wait_for(condition: Callable[[], bool], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def status_of(call: pytest.ExceptionInfo[grpc.RpcError]) -> grpc.StatusCode:
    error = call.value
    assert isinstance(error, grpc.Call)
    return error.code()


def impostor_calls(stub: pb_grpc.LearnerStub, real: SessionInfo, secret: str) -> None:
    """Every call of ``real``'s session with ``secret``: each must be PERMISSION_DENIED."""
    sid, inc = real.session_id, real.incarnation
    chunk = chunk_pb(cartpole_chunk(sid, inc, secret=secret, version=real.version))
    calls: list[Callable[[], Any]] = [
        lambda: stub.Heartbeat(
            pb.HeartbeatRequest(session_id=sid, incarnation=inc, session_secret=secret), timeout=10
        ),
        lambda: stub.PushTrajectories(iter([chunk]), timeout=10),
        lambda: list(stub.Exchange(iter([chunk]), timeout=10)),
        lambda: list(
            stub.GetWeights(
                pb.GetWeightsRequest(
                    session_id=sid, incarnation=inc, session_secret=secret, have_version=-1
                ),
                timeout=10,
            )
        ),
    ]
    for call in calls:
        with pytest.raises(grpc.RpcError) as refused:
            call()
        assert status_of(refused) == grpc.StatusCode.PERMISSION_DENIED
        assert "session_secret" in str(refused.value.details())  # type: ignore[attr-defined]


def test_an_intruder_cannot_take_over_or_disturb_a_live_actors_session(tmp_path: Path) -> None:
    # Sessions the intruder opens never send a chunk: a sync update waits sync_timeout_s
    # for them until they are reaped, so keep both short.
    dist = DistConfig(sync_timeout_s=0.5, actor_timeout_s=2.0)
    with (
        LearnerThread(tmp_path / "run", dist=dist) as learner,
        grpc.insecure_channel(learner.address) as channel,
    ):
        opened = count_registrations(learner)
        stub = pb_grpc.LearnerStub(channel)
        with running_actor(learner.address) as worker:
            wait_for(lambda: worker.chunks_sent >= 2)
            real = worker.session
            assert real is not None
            before = worker.chunks_sent
            deadline = time.monotonic() + 3.0
            intruder = None
            while time.monotonic() < deadline:  # the actor's id, again and again
                request = pb.RegisterRequest(actor_id="actor-0", num_envs=1, env_id="CartPole-v1")
                intruder = stub.Register(request, timeout=10)
                assert intruder.session_id != real.session_id
                assert intruder.session_secret != real.session_secret
                time.sleep(0.05)
            assert intruder is not None
            wait_for(lambda: worker.chunks_sent >= before + 3)
            assert worker.session is real  # never refused, never registered again
            assert [o for o in opened if o[1] == REAL_ENVS] == [("actor-0", REAL_ENVS)]
            assert len(opened) > 10  # every intruder registration got a session of its own
            # The session id is no secret; calls of it with a wrong, a missing or another
            # session's secret are refused, and the session goes on.
            for secret in ("0" * 32, "", intruder.session_secret, "\u00e9" * 32):
                impostor_calls(stub, real, secret)
            after = worker.chunks_sent
            wait_for(lambda: worker.chunks_sent >= after + 2)
            assert worker.session is real
            assert real.session_id in learner.run.core.sessions
        assert [o for o in opened if o[1] == REAL_ENVS] == [("actor-0", REAL_ENVS)]
