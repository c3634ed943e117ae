"""The actor's sender thread: order, backpressure, errors, shutdown (fake client at the seam)."""

from __future__ import annotations

import threading
from collections.abc import Iterable

import pytest
import torch
from tests.integration.learner_harness import cartpole_chunk
from torch import nn

from fleetmind.core.errors import ConfigError, PreconditionError, UnavailableError
from fleetmind.core.exchange import Chunk, PushReply, SessionInfo, Weights
from fleetmind.runtime.actor.push_pipeline import PushPipeline
from fleetmind.runtime.learner.weight_store import load_weights, snapshot

SESSION = SessionInfo("s", 1, 0, "impala", {}, {}, 4, 0, "async", "secret")


class GatedClient:
    """Answers pushes only when the test opens the gate; records what arrived."""

    def __init__(self, fail: dict[int, Exception] | None = None) -> None:
        self.gate = threading.Semaphore(0)
        self.started = threading.Semaphore(0)
        self.received: list[int] = []
        self.fail = fail or {}

    def push(self, chunks: Iterable[Chunk]) -> PushReply:
        (msg,) = list(chunks)
        self.started.release()
        if not self.gate.acquire(timeout=30):
            raise RuntimeError("test gate never opened")
        self.received.append(msg.policy_version)
        if msg.policy_version in self.fail:
            raise self.fail[msg.policy_version]
        return PushReply(version=msg.policy_version + 1, accepted=1)


def chunk(version: int) -> Chunk:
    return cartpole_chunk("s", 1, version=version)


def in_thread(target: object) -> threading.Thread:
    thread = threading.Thread(target=target, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def test_chunks_go_in_order_and_the_latest_answer_is_kept() -> None:
    client = GatedClient()
    pushes = PushPipeline(client, depth=2)  # type: ignore[arg-type]
    for version in range(3):
        pushes.submit(chunk(version))
    assert pushes.check() is None  # nothing answered yet: the loop was not blocked
    for _ in range(3):
        client.gate.release()
    reply = pushes.settle(30)
    assert client.received == [0, 1, 2]
    assert reply is not None
    assert reply.version == 3
    assert pushes.sent == 3
    assert pushes.pending == 0
    assert pushes.close(30)


def test_a_full_queue_blocks_submit_until_the_sender_takes_a_chunk() -> None:
    client = GatedClient()
    pushes = PushPipeline(client, depth=1)  # type: ignore[arg-type]
    pushes.submit(chunk(0))
    assert client.started.acquire(timeout=30)  # chunk 0 in flight
    pushes.submit(chunk(1))  # waits in the queue
    third = in_thread(lambda: pushes.submit(chunk(2)))
    third.join(0.3)
    assert third.is_alive(), "a third chunk must wait: one in flight, one queued"
    assert pushes.pending == 2
    client.gate.release()  # chunk 0 answered, chunk 1 goes out, chunk 2 enters the queue
    third.join(30)
    assert not third.is_alive()
    client.gate.release()
    client.gate.release()
    pushes.settle(30)
    assert client.received == [0, 1, 2]
    assert pushes.close(30)


@pytest.mark.parametrize(
    "error", [PreconditionError("stale session"), UnavailableError("learner gone")]
)
def test_a_failed_push_raises_in_the_loop_and_drops_the_chunks_behind_it(
    error: Exception,
) -> None:
    client = GatedClient(fail={0: error})
    pushes = PushPipeline(client, depth=1)  # type: ignore[arg-type]
    pushes.submit(chunk(0))
    assert client.started.acquire(timeout=30)
    pushes.submit(chunk(1))  # same session: dropped when chunk 0 fails
    client.gate.release()
    with pytest.raises(type(error), match=str(error)):
        pushes.settle(30)
    assert pushes.dropped == 1
    assert pushes.pending == 0
    assert pushes.check() is None  # raised once, then the pipeline goes on
    pushes.submit(chunk(5))
    client.gate.release()
    reply = pushes.settle(30)
    assert reply is not None
    assert reply.version == 6
    assert client.received == [0, 5]
    assert pushes.close(30)


def test_an_error_also_reaches_the_next_submit() -> None:
    client = GatedClient(fail={0: ValueError("not a fleetmind error")})
    pushes = PushPipeline(client, depth=1)  # type: ignore[arg-type]
    pushes.submit(chunk(0))
    client.gate.release()
    assert client.started.acquire(timeout=30)
    for _ in range(3000):  # the push ends right away; this only waits for the thread
        if not pushes.pending:
            break
        threading.Event().wait(0.01)
    with pytest.raises(ValueError, match="not a fleetmind error"):
        pushes.submit(chunk(1))
    assert client.received == [0]
    assert pushes.close(30)


def test_a_new_session_discards_queued_chunks_and_the_old_answer() -> None:
    client = GatedClient(fail={0: PreconditionError("old incarnation")})
    pushes = PushPipeline(client, depth=1)  # type: ignore[arg-type]
    pushes.submit(chunk(0))
    assert client.started.acquire(timeout=30)
    pushes.submit(chunk(1))
    discard = in_thread(lambda: pushes.discard(30))
    client.gate.release()  # the push in flight ends (with its error) before discard returns
    discard.join(30)
    assert not discard.is_alive()
    assert pushes.check() is None  # the old session's error is forgotten
    assert client.received == [0]
    assert pushes.close(30)


def test_close_drops_what_waits_and_joins_after_the_call_in_flight() -> None:
    client = GatedClient()
    pushes = PushPipeline(client, depth=1)  # type: ignore[arg-type]
    pushes.submit(chunk(0))
    assert client.started.acquire(timeout=30)
    pushes.submit(chunk(1))
    assert not pushes.close(0.1)  # still inside the call: reported, not abandoned silently
    client.gate.release()
    assert pushes.close(30)
    assert client.received == [0]
    assert pushes.dropped == 1
    pushes.submit(chunk(2))  # after close: dropped, never blocks
    assert pushes.dropped == 2


def test_depth_must_be_positive() -> None:
    with pytest.raises(ConfigError, match="depth"):
        PushPipeline(GatedClient(), depth=0)  # type: ignore[arg-type]


class WeightsClient(GatedClient):
    """Also serves weights: version ``reply version`` of a small network."""

    def __init__(self) -> None:
        super().__init__()
        self.weight_calls: list[int] = []
        self.sessions: list[SessionInfo] = []
        self.net = nn.Linear(4, 2)

    def weights(
        self, session: SessionInfo, have_version: int, wait_s: float
    ) -> tuple[Weights | None, float]:
        self.weight_calls.append(have_version)
        self.sessions.append(session)
        return snapshot(self.received[-1] + 1, self.net, None), 0.0


def test_async_prefetch_fetches_each_announced_version_once_in_the_sender_thread() -> None:
    client = WeightsClient()
    pushes = PushPipeline(client, depth=1)  # type: ignore[arg-type]
    pushes.prefetch = True
    pushes.session = SESSION
    pushes.loaded(0)
    pushes.submit(chunk(0))  # answered with version 1: fetched in the sender thread
    client.gate.release()
    pushes.settle(30)
    weights = pushes.take_weights(0)
    assert weights is not None
    assert weights.version == 1
    target = nn.Linear(4, 2)
    load_weights(target, weights)
    assert torch.equal(target.weight, client.net.weight)
    assert pushes.take_weights(1) is None  # taken once
    pushes.submit(chunk(0))  # answered with version 1 again: nothing new to fetch
    client.gate.release()
    pushes.settle(30)
    assert pushes.take_weights(1) is None
    assert client.weight_calls == [0]
    assert client.sessions == [SESSION]  # asked for the pipeline's session
    assert pushes.close(30)
