"""Dynamic batching: requests that arrive close together share one forward pass.

::

    batcher = DynamicBatcher(forward, BatchPolicy(max_batch_size=64, max_delay_s=0.0005))
    batcher.start()
    outputs = await batcher.submit(rows)     # rows: [B, *obs_shape] -> {name: [B, ...]}

The first waiting request holds the batch open for at most ``max_delay_s``;
the batch leaves as soon as it holds ``max_batch_size`` rows. The queue is
bounded: a full queue raises :class:`OverloadedError` at once. A request whose
caller went away (cancelled, deadline passed) before its batch left is dropped
and never computed.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from fleetmind.core.errors import FleetmindError, OverloadedError, UnavailableError

logger = logging.getLogger(__name__)

Forward = Callable[[np.ndarray], dict[str, np.ndarray]]
"""Runs the model on ``[B, ...]`` rows; every output has ``B`` rows."""

BatchObserver = Callable[[int, list[float]], None]
"""Told the row count of each batch and the queue time of each request in it."""

Outputs = dict[str, np.ndarray]


@dataclass(frozen=True)
class BatchPolicy:
    """When a batch leaves the queue."""

    max_batch_size: int = 64
    """Most rows per forward pass; 1 runs every request on its own."""
    max_delay_s: float = 0.0005
    """Longest time the oldest request waits for company."""
    max_queue: int = 1024
    """Most requests waiting; more are refused with OverloadedError."""
    in_thread: bool | None = True
    """Run forward passes on a dedicated worker thread instead of the event loop
    (``None``: let whoever builds the batcher decide, see
    :func:`fleetmind.serve.model.build_served_model`; a batcher treats it as False)."""


@dataclass
class _Pending:
    rows: np.ndarray
    future: asyncio.Future[Outputs]
    enqueued: float


class DynamicBatcher:
    """Collects requests into batches and runs them one batch at a time."""

    def __init__(
        self, forward: Forward, policy: BatchPolicy, observer: BatchObserver | None = None
    ) -> None:
        self._forward = forward
        self._policy = policy
        self._observer = observer
        self._queue: collections.deque[_Pending] = collections.deque()
        self._rows_queued = 0
        self._wakeup: asyncio.Future[None] | None = None
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        self._executor = ThreadPoolExecutor(1, "fleetmind-forward") if policy.in_thread else None

    def start(self) -> None:
        """Start the batching loop on the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="batcher")

    @property
    def in_thread(self) -> bool:
        """Whether forward passes run on the worker thread."""
        return self._executor is not None

    @property
    def queued(self) -> int:
        """Requests waiting for a batch."""
        return len(self._queue)

    async def submit(self, rows: np.ndarray) -> Outputs:
        """This request's rows of every output."""
        if self._closing:
            raise UnavailableError("model version is being unloaded; retry")
        if len(self._queue) >= self._policy.max_queue:
            raise OverloadedError(
                f"queue full ({self._policy.max_queue} requests waiting); retry later"
            )
        loop = asyncio.get_running_loop()
        pending = _Pending(rows, loop.create_future(), loop.time())
        self._queue.append(pending)
        self._rows_queued += len(rows)
        self._wake(full_only=len(self._queue) > 1)
        return await pending.future  # cancelling the caller cancels this future

    def _wake(self, full_only: bool) -> None:
        waiter = self._wakeup
        if waiter is None or waiter.done():
            return
        if not full_only or self._rows_queued >= self._policy.max_batch_size:
            waiter.set_result(None)

    async def _sleep_until_woken(self, timeout: float | None) -> None:
        loop = asyncio.get_running_loop()
        self._wakeup = loop.create_future()
        handle = None
        if timeout is not None:
            handle = loop.call_later(timeout, _resolve, self._wakeup)
        try:
            await self._wakeup
        finally:
            self._wakeup = None
            if handle is not None:
                handle.cancel()

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        batching = self._policy.max_batch_size > 1 and self._policy.max_delay_s > 0
        while True:
            if not self._queue:
                if self._closing:
                    return
                await self._sleep_until_woken(None)
                continue
            if batching and self._rows_queued < self._policy.max_batch_size:
                remaining = self._queue[0].enqueued + self._policy.max_delay_s - loop.time()
                if remaining > 0:
                    await self._sleep_until_woken(remaining)
                    continue
            batch = self._take_batch()
            if batch:
                await self._execute(batch)
            await asyncio.sleep(0)  # let handlers of finished requests reply

    def _take_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        rows = 0
        limit = self._policy.max_batch_size
        while self._queue and (not batch or rows + len(self._queue[0].rows) <= limit):
            pending = self._queue.popleft()
            self._rows_queued -= len(pending.rows)
            if pending.future.done():  # cancelled or deadline passed: skip the work
                continue
            batch.append(pending)
            rows += len(pending.rows)
        return batch

    async def _execute(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        rows = batch[0].rows if len(batch) == 1 else np.concatenate([p.rows for p in batch])
        try:
            if self._executor is not None:
                outputs = await loop.run_in_executor(self._executor, self._forward, rows)
            else:
                outputs = self._forward(rows)
        except Exception as exc:
            if not isinstance(exc, FleetmindError):
                logger.exception("forward pass on %d rows failed", len(rows))
            for pending in batch:
                if not pending.future.done():
                    pending.future.set_exception(exc)
            return
        if self._observer is not None:
            self._observer(len(rows), [start - p.enqueued for p in batch])
        offset = 0
        for pending in batch:
            end = offset + len(pending.rows)
            if not pending.future.done():
                pending.future.set_result({k: v[offset:end] for k, v in outputs.items()})
            offset = end

    async def close(self) -> None:
        """Finish what is queued, then stop; later submits raise UnavailableError."""
        self._closing = True
        self._wake(full_only=False)
        if self._task is not None:
            await self._task
        if self._executor is not None:
            self._executor.shutdown(wait=True)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
