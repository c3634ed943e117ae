"""Pipelined pushes against a real learner: on-policy sync, failures, shutdown, metrics."""

from __future__ import annotations

import threading
from collections.abc import Iterable
from pathlib import Path

import pytest
from tests.integration.learner_harness import LearnerThread

from fleetmind.core.errors import (
    InvalidInputError,
    OverloadedError,
    PreconditionError,
    UnavailableError,
)
from fleetmind.rpc.channel import ChannelConfig
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.runtime.actor import ActorWorker
from fleetmind.runtime.actor_client import GrpcLearnerClient
from fleetmind.runtime.dist_config import ActorConfig
from fleetmind.runtime.run_dir import read_metrics


class RecordingClient:
    """A real gRPC client that records pushes and fails the ones it is told to."""

    def __init__(self, address: str, faults: dict[int, Exception] | None = None) -> None:
        self.inner = GrpcLearnerClient(address, ChannelConfig(), timeout_s=10)
        self.faults = faults or {}
        self.corrupt_at: int | None = None
        self.versions: list[int] = []
        self.push_threads: set[str] = set()
        self.registrations = 0

    def register(self, request: pb.RegisterRequest) -> pb.RegisterResponse:
        self.registrations += 1
        return self.inner.register(request)

    def heartbeat(self, request: pb.HeartbeatRequest) -> pb.HeartbeatResponse:
        return self.inner.heartbeat(request)

    def push(self, chunks: Iterable[pb.TrajectoryChunk]) -> pb.PushResponse:
        (msg,) = list(chunks)
        self.versions.append(msg.policy_version)
        self.push_threads.add(threading.current_thread().name)
        fault = self.faults.pop(len(self.versions), None)
        if fault is not None:
            raise fault
        if self.corrupt_at == len(self.versions):
            msg.num_steps += 1  # the learner answers INVALID_ARGUMENT
        return self.inner.push([msg])

    def weights(self, request: pb.GetWeightsRequest) -> tuple[list[pb.WeightsChunk], float]:
        return self.inner.weights(request)

    def close(self) -> None:
        self.inner.close()


def run_worker(worker: ActorWorker) -> threading.Thread:
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    return thread


def test_sync_actor_pushes_one_chunk_per_version_from_its_sender_thread(tmp_path: Path) -> None:
    with LearnerThread(tmp_path / "run", steps=400) as learner:
        client = RecordingClient(learner.address)
        worker = ActorWorker(ActorConfig(learner=learner.address, actor_id="a0", envs=2), client)
        assert worker.run() == 0
        client.close()
    assert worker.pushes is not None
    assert not worker.pushes._thread.is_alive()  # joined before the channel closed
    # On-policy: every version got exactly one chunk, collected with that version.
    assert client.versions == list(range(len(client.versions)))
    assert len(client.versions) >= 400 // 8
    assert client.push_threads == {"push"}
    core = learner.run.core
    assert core.dropped_chunks == 0
    assert core.stage_totals["push"] > 0
    assert core.stage_totals["wait"] > 0
    last = read_metrics(tmp_path / "run")[-1]
    assert last["time_actor_push_s"] > 0
    busy = sum(last[f"time_actor_{k}_s"] for k in ("env", "inference", "rpc"))
    assert last["rpc_share"] == pytest.approx(last["time_actor_rpc_s"] / busy, rel=0.02)


@pytest.mark.parametrize(
    ("fault", "registrations"),
    [
        (PreconditionError("FAILED_PRECONDITION: unknown or expired session; register again"), 2),
        (UnavailableError("UNAVAILABLE: connection reset"), 1),
        (OverloadedError("RESOURCE_EXHAUSTED: learner queue holds 64 chunks"), 1),
    ],
)
def test_a_push_that_fails_in_the_sender_thread_is_handled_by_the_loop(
    tmp_path: Path, fault: Exception, registrations: int
) -> None:
    with LearnerThread(tmp_path / "run", steps=200) as learner:
        client = RecordingClient(learner.address, faults={3: fault})
        worker = ActorWorker(
            ActorConfig(learner=learner.address, actor_id="a0", envs=2, backoff_max_s=0.2),
            client,
        )
        assert worker.run() == 0  # went on after the failure and trained to the end
        client.close()
    assert client.registrations == registrations
    assert len(client.versions) > 3
    assert learner.result is not None
    assert learner.result.env_steps >= 200


def test_a_refused_chunk_stops_the_actor_with_the_learners_message(tmp_path: Path) -> None:
    with LearnerThread(tmp_path / "run") as learner:
        client = RecordingClient(learner.address)
        client.corrupt_at = 2
        worker = ActorWorker(ActorConfig(learner=learner.address, actor_id="a0", envs=2), client)
        with pytest.raises(InvalidInputError, match="num_steps"):
            worker.run()
        client.close()
        assert worker.pushes is not None
        assert not worker.pushes._thread.is_alive()
        assert learner.run.core.version >= 1  # the learner is still serving
