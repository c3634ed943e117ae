"""An actor against a real learner: sync mode's exchange stream, async mode's sender
thread; on-policy data, failures handled by the loop, shutdown, metrics."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import pytest
from grpc import aio
from tests.integration.learner_harness import ROLLOUT, LearnerThread, cartpole_chunk

from fleetmind.algos.impala.learner import ImpalaConfig
from fleetmind.core.errors import (
    ConfigError,
    InvalidInputError,
    OverloadedError,
    PreconditionError,
    UnavailableError,
)
from fleetmind.core.exchange import Chunk, ExchangeAnswer, PushReply, SessionInfo, Weights
from fleetmind.rpc.channel import ChannelConfig
from fleetmind.rpc.generated import training_pb2 as pb
from fleetmind.rpc.generated import training_pb2_grpc as pb_grpc
from fleetmind.rpc.learner_client import GrpcExchangeStream, GrpcLearnerClient
from fleetmind.runtime.actor import worker as actor_module
from fleetmind.runtime.actor.worker import ActorWorker
from fleetmind.runtime.dist_config import ActorConfig, DistConfig
from fleetmind.runtime.run_dir import read_metrics


class RecordingClient:
    """A real gRPC client that records chunks sent and fails the ones it is told to."""

    def __init__(self, address: str, faults: dict[int, Exception] | None = None) -> None:
        self.inner = GrpcLearnerClient(address, ChannelConfig(), timeout_s=10)
        self.faults = faults or {}
        self.corrupt_at: int | None = None
        self.versions: list[int] = []
        self.push_threads: set[str] = set()
        self.registrations = 0
        self.streams = 0

    def record(self, chunk: Chunk) -> tuple[Chunk, Exception | None]:
        """Note a chunk; what to send instead (corrupted if told to) and the fault to
        raise for it, if any."""
        self.versions.append(chunk.policy_version)
        self.push_threads.add(threading.current_thread().name)
        if self.corrupt_at == len(self.versions):
            chunk = one_step_too_many(chunk)  # the learner answers INVALID_ARGUMENT
        return chunk, self.faults.pop(len(self.versions), None)

    def register(self, actor_id: str, env_id: str, num_envs: int, pid: int) -> SessionInfo:
        self.registrations += 1
        return self.inner.register(actor_id, env_id, num_envs, pid)

    def heartbeat(self, session: SessionInfo) -> PushReply:
        return self.inner.heartbeat(session)

    def push(self, chunks: Iterable[Chunk]) -> PushReply:
        (chunk,) = list(chunks)
        chunk, fault = self.record(chunk)
        if fault is not None:
            raise fault
        return self.inner.push([chunk])

    def exchange(self) -> RecordingStream:
        self.streams += 1
        return RecordingStream(self, self.inner.exchange())

    def weights(
        self, session: SessionInfo, have_version: int, wait_s: float
    ) -> tuple[Weights | None, float]:
        return self.inner.weights(session, have_version, wait_s)

    def close(self) -> None:
        self.inner.close()


def one_step_too_many(chunk: Chunk) -> Chunk:
    """``chunk`` with every agent's last step repeated: ``T + 1`` steps on the wire."""

    def longer(array: np.ndarray) -> np.ndarray:
        return np.concatenate([array, array[-1:]])

    arrays = ("obs", "actions", "log_probs", "values", "rewards", "terminated", "truncated",
              "valid", "next_values")  # fmt: skip
    trajectories = [
        dataclasses.replace(t, **{name: longer(getattr(t, name)) for name in arrays})
        for t in chunk.trajectories
    ]
    return dataclasses.replace(chunk, trajectories=trajectories)


class RecordingStream:
    """Records what goes up a real exchange stream; a fault replaces the chunk's answer."""

    def __init__(self, client: RecordingClient, inner: GrpcExchangeStream) -> None:
        self.client = client
        self.inner = inner

    @property
    def age_s(self) -> float:
        return self.inner.age_s

    def round(self, chunk: Chunk) -> ExchangeAnswer:
        chunk, fault = self.client.record(chunk)
        answer = self.inner.round(chunk)
        if fault is not None:
            raise fault
        return answer

    def cancel_if_idle(self, idle_s: float) -> bool:
        return self.inner.cancel_if_idle(idle_s)

    def close(self) -> None:
        self.inner.close()


def async_learner(run_dir: Path, steps: int = 10**9) -> LearnerThread:
    algo = ImpalaConfig(rollout_steps=ROLLOUT, sgd_steps=1)
    return LearnerThread(run_dir, dist=DistConfig(mode="async"), steps=steps, algo=algo)


def learner_in(mode: str, run_dir: Path, steps: int = 10**9) -> LearnerThread:
    return LearnerThread(run_dir, steps=steps) if mode == "sync" else async_learner(run_dir, steps)


def actor(config: ActorConfig, client: RecordingClient) -> ActorWorker:
    """An actor in the test's process, beside its learner (it leaves the threads alone)."""
    return ActorWorker(config, client, own_process=False)


def run_to_the_end(address: str) -> tuple[RecordingClient, ActorWorker]:
    """An actor with a recording client, run until the learner is done."""
    client = RecordingClient(address)
    worker = actor(ActorConfig(learner=address, actor_id="a0", envs=2), client)
    assert worker.run() == 0
    client.close()
    return client, worker


def test_sync_actor_sends_one_chunk_per_version_up_one_exchange_stream(tmp_path: Path) -> None:
    with LearnerThread(tmp_path / "run", steps=400) as learner:
        client, worker = run_to_the_end(learner.address)
    assert worker.pushes is None  # no sender thread: nothing could overlap the round trip
    assert worker.exchange is None  # closed before the channel
    assert client.streams == 1
    # On-policy: every version got exactly one chunk, collected with that version.
    assert client.versions == list(range(len(client.versions)))
    assert len(client.versions) >= 400 // 8
    assert client.push_threads == {threading.current_thread().name}
    core = learner.run.core
    assert core.dropped_chunks == 0
    assert core.stage_totals["wait"] > 0  # from sending a chunk to the next version's first byte
    assert core.stage_totals["rpc"] > 0  # the rest of the version, and loading it
    assert core.stage_totals["push"] == 0
    last = read_metrics(tmp_path / "run")[-1]
    busy = sum(last[f"time_actor_{k}_s"] for k in ("env", "inference", "rpc"))
    assert last["rpc_share"] == pytest.approx(last["time_actor_rpc_s"] / busy, rel=0.02)


def test_async_actor_pushes_from_its_sender_thread(tmp_path: Path) -> None:
    with async_learner(tmp_path / "run", steps=400) as learner:
        client, worker = run_to_the_end(learner.address)
    assert worker.pushes is not None
    assert not worker.pushes._thread.is_alive()  # joined before the channel closed
    assert client.streams == 0
    assert client.push_threads == {"push"}
    assert len(client.versions) >= 400 // 8
    core = learner.run.core
    assert core.stage_totals["push"] > 0
    assert read_metrics(tmp_path / "run")[-1]["time_actor_push_s"] > 0


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize(
    ("fault", "registrations"),
    [
        (PreconditionError("FAILED_PRECONDITION: unknown or expired session; register again"), 2),
        (UnavailableError("UNAVAILABLE: connection reset"), 1),
        (OverloadedError("RESOURCE_EXHAUSTED: learner queue holds 64 chunks"), 1),
    ],
)
def test_a_chunk_that_fails_on_its_way_is_handled_by_the_loop(
    tmp_path: Path, mode: str, fault: Exception, registrations: int
) -> None:
    with learner_in(mode, tmp_path / "run", steps=200) as learner:
        client = RecordingClient(learner.address, faults={3: fault})
        worker = actor(
            ActorConfig(learner=learner.address, actor_id="a0", envs=2, backoff_max_s=0.2),
            client,
        )
        assert worker.run() == 0  # went on after the failure and trained to the end
        client.close()
    assert client.registrations == registrations
    assert len(client.versions) > 3
    if mode == "sync":
        assert client.streams >= 2  # the failed stream was dropped, a new one opened
    assert learner.result is not None
    assert learner.result.env_steps >= 200


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_refused_chunk_stops_the_actor_with_the_learners_message(
    tmp_path: Path, mode: str
) -> None:
    with learner_in(mode, tmp_path / "run") as learner:
        client = RecordingClient(learner.address)
        client.corrupt_at = 2
        worker = actor(ActorConfig(learner=learner.address, actor_id="a0", envs=2), client)
        with pytest.raises(InvalidInputError, match="num_steps"):
            worker.run()
        client.close()
        assert worker.exchange is None
        if mode == "async":
            assert worker.pushes is not None
            assert not worker.pushes._thread.is_alive()
        with grpc.insecure_channel(learner.address) as channel:  # the learner still serves
            status = pb_grpc.LearnerStub(channel).GetStatus(pb.StatusRequest(), timeout=10)
        assert not status.done
        assert learner.run.core.env_steps > 0 or mode == "async"  # sync: trained the 1st


def test_an_exchange_stream_silent_while_an_answer_is_due_counts_as_lost() -> None:
    async def never_answer(requests: Any, context: Any) -> Any:
        async for _ in requests:
            await asyncio.sleep(3600)
        yield b""  # pragma: no cover

    with stream_to("Exchange", grpc.stream_stream_rpc_method_handler(never_answer)) as stream:
        assert not stream.cancel_if_idle(0.0)  # nothing is due yet
        errors: list[Exception] = []

        def round_trip() -> None:
            try:
                stream.round(cartpole_chunk("s"))
            except Exception as exc:  # handed to the test's thread
                errors.append(exc)

        waiting = threading.Thread(target=round_trip, daemon=True)
        waiting.start()  # the chunk goes up; its answer never comes
        time.sleep(0.3)
        assert not stream.cancel_if_idle(5.0)
        assert stream.cancel_if_idle(0.2)
        waiting.join(30)
        assert not waiting.is_alive()
        (error,) = errors
        assert isinstance(error, UnavailableError)
        assert "no answer from the learner" in str(error)


def test_a_learner_without_the_exchange_call_is_named_as_a_version_mismatch() -> None:
    async def status(request: bytes, context: Any) -> bytes:
        return b""  # pragma: no cover

    with (
        stream_to("GetStatus", grpc.unary_unary_rpc_method_handler(status)) as stream,
        pytest.raises(ConfigError, match="older fleetmind"),
    ):
        stream.round(cartpole_chunk("s"))


@contextmanager
def stream_to(method: str, handler: Any) -> Iterator[GrpcExchangeStream]:
    """An exchange stream of the real client to a bare server serving only ``method``."""
    generic = grpc.method_handlers_generic_handler("fleetmind.v1.Learner", {method: handler})
    with AioServerThread(generic) as address:
        client = GrpcLearnerClient(address, ChannelConfig(), timeout_s=10)
        stream = client.exchange()
        try:
            yield stream
        finally:
            stream.close()
            client.close()


class AioServerThread:
    """A bare grpc.aio server with one generic handler, on its own loop and thread."""

    def __init__(self, handler: grpc.GenericRpcHandler) -> None:
        self.handler = handler
        self.address = ""
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), daemon=True)

    async def _main(self) -> None:
        server = aio.server()
        server.add_generic_rpc_handlers((self.handler,))
        port = server.add_insecure_port("127.0.0.1:0")
        await server.start()
        self._loop, self._stop = asyncio.get_running_loop(), asyncio.Event()
        self.address = f"127.0.0.1:{port}"
        self._ready.set()
        await self._stop.wait()
        await server.stop(grace=None)

    def __enter__(self) -> str:
        self._thread.start()
        assert self._ready.wait(30)
        return self.address

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None
        assert self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(30)


def test_an_old_exchange_stream_is_replaced_between_two_chunks(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(actor_module, "EXCHANGE_RENEW_S", 0.0)  # every stream is old
    with LearnerThread(tmp_path / "run", steps=100) as learner:
        client, _ = run_to_the_end(learner.address)
    assert client.streams == len(client.versions)  # one stream per chunk
    assert client.versions == list(range(len(client.versions)))  # still on-policy
    assert learner.run.core.dropped_chunks == 0
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
