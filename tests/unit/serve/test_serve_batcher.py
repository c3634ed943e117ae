"""The dynamic batcher: merging, limits, overload and cancellation."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest

from fleetmind.core.errors import OverloadedError, UnavailableError
from fleetmind.serve.batcher import BatchPolicy, DynamicBatcher


class Recorder:
    """A forward pass that doubles its input and remembers every batch."""

    def __init__(self, fail: bool = False) -> None:
        self.batches: list[list[float]] = []
        self.fail = fail

    def __call__(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        self.batches.append(rows[:, 0].tolist())
        if self.fail:
            raise RuntimeError("boom")
        return {"double": rows * 2, "first": rows[:, 0].copy()}


def rows(value: float, n: int = 1) -> np.ndarray:
    return np.full((n, 3), value, np.float32)


async def _gather(batcher: DynamicBatcher, values: list[float]) -> list[dict[str, np.ndarray]]:
    return list(await asyncio.gather(*(batcher.submit(rows(v)) for v in values)))


@pytest.mark.parametrize("in_thread", [True, False])
def test_concurrent_requests_share_one_forward_and_get_their_own_rows(in_thread: bool) -> None:
    forward = Recorder()
    observed: list[int] = []

    async def main() -> list[dict[str, np.ndarray]]:
        policy = BatchPolicy(max_batch_size=8, max_delay_s=0.05, in_thread=in_thread)
        batcher = DynamicBatcher(forward, policy, lambda n, q: observed.append(n))
        batcher.start()
        out = await _gather(batcher, [1, 2, 3])
        await batcher.close()
        return out

    results = asyncio.run(main())
    assert forward.batches == [[1, 2, 3]]
    assert observed == [3]
    for value, result in zip([1, 2, 3], results, strict=True):
        np.testing.assert_array_equal(result["double"], rows(value) * 2)


def test_batches_never_exceed_max_batch_size() -> None:
    forward = Recorder()

    async def main() -> None:
        batcher = DynamicBatcher(forward, BatchPolicy(max_batch_size=4, max_delay_s=0.05))
        batcher.start()
        await asyncio.gather(*(batcher.submit(rows(i, 2)) for i in range(5)))
        await batcher.close()

    asyncio.run(main())
    assert [len(b) for b in forward.batches] == [4, 4, 2]


def test_batching_off_runs_every_request_alone() -> None:
    forward = Recorder()

    async def main() -> None:
        batcher = DynamicBatcher(forward, BatchPolicy(max_batch_size=1, max_delay_s=0.05))
        batcher.start()
        await _gather(batcher, [1, 2, 3])
        await batcher.close()

    asyncio.run(main())
    assert forward.batches == [[1], [2], [3]]


def test_full_queue_is_refused_at_once() -> None:
    async def main() -> None:
        batcher = DynamicBatcher(Recorder(), BatchPolicy(max_queue=2, max_delay_s=0.05))
        tasks = [asyncio.ensure_future(batcher.submit(rows(i))) for i in range(2)]
        await asyncio.sleep(0)
        with pytest.raises(OverloadedError, match="queue full"):
            await batcher.submit(rows(9))
        batcher.start()
        await asyncio.gather(*tasks)
        await batcher.close()

    asyncio.run(main())


def test_cancelled_request_is_not_computed() -> None:
    forward = Recorder()

    async def main() -> None:
        batcher = DynamicBatcher(forward, BatchPolicy(max_batch_size=8, max_delay_s=0.05))
        keep = asyncio.ensure_future(batcher.submit(rows(1)))
        drop = asyncio.ensure_future(batcher.submit(rows(2)))
        await asyncio.sleep(0)
        drop.cancel()
        batcher.start()
        await keep
        await batcher.close()

    asyncio.run(main())
    assert forward.batches == [[1]]


def test_failed_forward_fails_its_batch_and_the_batcher_goes_on() -> None:
    forward = Recorder(fail=True)

    async def main() -> None:
        batcher = DynamicBatcher(forward, BatchPolicy(max_delay_s=0.001))
        batcher.start()
        with pytest.raises(RuntimeError, match="boom"):
            await batcher.submit(rows(1))
        forward.fail = False
        out = await batcher.submit(rows(2))
        np.testing.assert_array_equal(out["first"], [2])
        await batcher.close()
        with pytest.raises(UnavailableError):
            await batcher.submit(rows(3))

    asyncio.run(main())


def test_call_that_needs_no_company_runs_without_suspending() -> None:
    """Batching off and the forward inline: the call computes and returns at once."""
    forward = Recorder()

    async def main() -> None:
        batcher = DynamicBatcher(forward, BatchPolicy(max_batch_size=1, in_thread=False))
        batcher.start()
        call = batcher.submit(rows(4))
        with pytest.raises(StopIteration) as done:
            call.send(None)  # one step of the coroutine: it must finish in it
        np.testing.assert_array_equal(done.value.value["first"], [4])
        await batcher.close()

    asyncio.run(main())
    assert forward.batches == [[4]]


@pytest.mark.parametrize("in_thread", [True, False])
def test_many_batches_in_a_row_each_served_once(in_thread: bool) -> None:
    """The lead passes from call to call; every request is computed exactly once."""
    forward = Recorder()

    async def main() -> list[dict[str, np.ndarray]]:
        policy = BatchPolicy(max_batch_size=3, max_delay_s=0.001, in_thread=in_thread)
        batcher = DynamicBatcher(forward, policy)
        batcher.start()
        out = await _gather(batcher, [float(i) for i in range(20)])
        await batcher.close()
        return out

    results = asyncio.run(main())
    assert sorted(v for b in forward.batches for v in b) == list(range(20))
    assert max(len(b) for b in forward.batches) <= 3
    for i, result in enumerate(results):
        np.testing.assert_array_equal(result["first"], [i])


def test_leader_going_away_mid_batch_still_serves_the_others() -> None:
    """The call running a batch on the worker thread is cancelled: the rest get their rows."""
    release = threading.Event()
    seen: list[list[float]] = []

    def slow_forward(batch: np.ndarray) -> dict[str, np.ndarray]:
        seen.append(batch[:, 0].tolist())
        release.wait(5)
        return {"first": batch[:, 0].copy()}

    async def main() -> None:
        policy = BatchPolicy(max_batch_size=8, max_delay_s=0.01, in_thread=True)
        batcher = DynamicBatcher(slow_forward, policy)
        batcher.start()
        leader = asyncio.ensure_future(batcher.submit(rows(1)))
        follower = asyncio.ensure_future(batcher.submit(rows(2)))
        while not seen:  # the batch [1, 2] is on the worker thread
            await asyncio.sleep(0.001)
        later = asyncio.ensure_future(batcher.submit(rows(3)))
        await asyncio.sleep(0.02)
        leader.cancel()
        await asyncio.sleep(0.01)
        release.set()
        out_follower, out_later = await asyncio.gather(follower, later)
        np.testing.assert_array_equal(out_follower["first"], [2])
        np.testing.assert_array_equal(out_later["first"], [3])
        with pytest.raises(asyncio.CancelledError):
            await leader
        await batcher.close()

    asyncio.run(main())
    assert seen == [[1, 2], [3]]


def test_close_finishes_queued_requests_first() -> None:
    forward = Recorder()

    async def main() -> list[dict[str, np.ndarray]]:
        batcher = DynamicBatcher(forward, BatchPolicy(max_batch_size=2, max_delay_s=0.05))
        batcher.start()
        calls = [asyncio.ensure_future(batcher.submit(rows(i))) for i in range(5)]
        await asyncio.sleep(0)
        await batcher.close()  # does not wait out the 50 ms delay of each batch
        return list(await asyncio.gather(*calls))

    results = asyncio.run(main())
    assert [r["first"].tolist() for r in results] == [[0], [1], [2], [3], [4]]
    assert forward.batches == [[0, 1], [2, 3], [4]]


def test_by_default_a_request_to_an_idle_model_runs_at_once() -> None:
    """No wait for company by default: an inline forward answers without suspending."""
    forward = Recorder()
    assert BatchPolicy().max_delay_s == 0

    async def main() -> None:
        batcher = DynamicBatcher(forward, BatchPolicy(in_thread=False))
        batcher.start()
        call = batcher.submit(rows(7))
        with pytest.raises(StopIteration) as done:  # finished on its first step
            call.send(None)
        np.testing.assert_array_equal(done.value.value["first"], [7])
        await batcher.close()

    asyncio.run(main())
    assert forward.batches == [[7]]


def test_without_a_wait_requests_arriving_during_a_forward_form_the_next_batch() -> None:
    started = threading.Event()
    release = threading.Event()
    seen: list[list[float]] = []

    def slow_forward(batch: np.ndarray) -> dict[str, np.ndarray]:
        seen.append(batch[:, 0].tolist())
        started.set()
        release.wait(5)
        return {"first": batch[:, 0].copy()}

    async def main() -> None:
        policy = BatchPolicy(max_batch_size=3, max_delay_s=0.0, in_thread=True)
        batcher = DynamicBatcher(slow_forward, policy)
        batcher.start()
        first = asyncio.ensure_future(batcher.submit(rows(1)))
        while not started.is_set():  # [1] runs alone, at once
            await asyncio.sleep(0.001)
        later = [asyncio.ensure_future(batcher.submit(rows(v))) for v in (2, 3, 4, 5)]
        await asyncio.sleep(0.01)
        release.set()
        outs = await asyncio.gather(first, *later)
        assert [o["first"].tolist() for o in outs] == [[1], [2], [3], [4], [5]]
        await batcher.close()

    asyncio.run(main())
    assert seen == [[1], [2, 3, 4], [5]]
