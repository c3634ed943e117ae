"""Dynamic batching: requests that arrive close together share one forward pass.

::

    batcher = DynamicBatcher(forward, BatchPolicy(max_batch_size=64))
    batcher.start()
    outputs = await batcher.submit(rows)     # rows: [B, *obs_shape] -> {name: [B, ...]}

A request to an idle model runs at once; the requests that arrive while a batch
computes (on the worker thread) wait for it and then leave together as the next
batch, up to ``max_batch_size`` rows. With ``max_delay_s`` set, the first waiting
request also holds its batch open for at most that long, for fuller batches; the
batch leaves as soon as it holds ``max_batch_size`` rows. The queue is
bounded: a full queue raises :class:`OverloadedError` at once. A request whose
caller went away (cancelled, deadline passed) before its batch left is dropped
and never computed. A batch larger than ``max_batch_size`` (one request that
carries more rows) runs on a worker thread even when forward passes otherwise
run inline, so that the event loop keeps answering other calls meanwhile.

There is no batching task: the calls themselves run the batches. The call at
the head of the queue *leads*: it waits for company, runs the batch (its own
rows first), hands every other caller its rows, and passes the lead to the next
waiting call before it returns. Each call therefore suspends at most once (the
leader on its timer, the others on their result), and a call that needs no
company (batching off, forward inline) runs its forward pass and returns
without suspending at all. Python gRPC pays for every suspension and event-loop
callback, so this matters more than anything else on the serving hot path.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import NamedTuple

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
    max_delay_s: float = 0.0
    """Longest time the oldest request waits for company (0: a request to an idle model
    runs at once; those that arrive meanwhile still form the next batch)."""
    max_queue: int = 1024
    """Most requests waiting; more are refused with OverloadedError."""
    in_thread: bool | None = True
    """Run forward passes on a dedicated worker thread instead of the event loop
    (``None``: let whoever builds the batcher decide, see
    :func:`fleetmind.serve.model.build_served_model`; a batcher treats it as False)."""


@dataclass(eq=False)
class _Pending:
    rows: np.ndarray
    future: asyncio.Future[Outputs | None]
    """The caller's result; resolved with ``None`` when the caller is handed the lead."""
    enqueued: float
    lead: bool = False
    """This caller runs the batches now (its future then says nothing about its rows)."""
    outputs: Outputs | None = None
    error: BaseException | None = None
    computed: bool = False
    queue_s: float = 0.0
    """Seconds from arrival until its batch began."""
    compute_s: float = 0.0
    """Seconds its batch's forward pass took."""


class Timed(NamedTuple):
    """A request's outputs and where its time went on the server."""

    outputs: Outputs
    queue_s: float
    """Seconds the request waited for its batch to begin."""
    compute_s: float
    """Seconds the forward pass of its batch took."""


class DynamicBatcher:
    """Collects requests into batches and runs them one batch at a time."""

    def __init__(
        self, forward: Forward, policy: BatchPolicy, observer: BatchObserver | None = None
    ) -> None:
        self._forward = forward
        self._policy = policy
        self._observer = observer
        self._batching = policy.max_batch_size > 1 and policy.max_delay_s > 0
        self._queue: collections.deque[_Pending] = collections.deque()
        self._rows_queued = 0
        self._leading = False
        """A call is running batches, or has been handed the lead and will."""
        self._wakeup: asyncio.Future[None] | None = None
        self._started = False
        self._closing = False
        self._drained: asyncio.Event | None = None
        self._executor = ThreadPoolExecutor(1, "fleetmind-forward") if policy.in_thread else None
        self._large: ThreadPoolExecutor | None = None
        """Runs the batches of more than ``max_batch_size`` rows when forwards are inline."""

    def start(self) -> None:
        """Begin running batches (requests submitted before wait until now)."""
        if not self._started:
            self._started = True
            self._hand_off()

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
        return (await self.submit_timed(rows)).outputs

    async def submit_timed(self, rows: np.ndarray) -> Timed:
        """This request's rows of every output, with its queue and compute time."""
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
        if self._leading or not self._started:
            if self._rows_queued >= self._policy.max_batch_size:
                self._wake()
            if not await self._follow(pending):
                return _timed(pending)
        else:
            pending.lead = self._leading = True
        try:
            await self._lead(pending)
        finally:
            if not pending.computed:  # cancelled while leading: drop the request
                pending.lead = False
                pending.future.cancel()
            self._hand_off()
        return _timed(pending)

    async def _follow(self, pending: _Pending) -> bool:
        """Wait for this request's rows (False) or for the lead (True)."""
        try:
            await pending.future
        except asyncio.CancelledError:
            if pending.lead:  # handed the lead while going away: pass it on
                pending.lead = False
                self._hand_off()
            raise
        return pending.lead

    def _wake(self) -> None:
        waiter = self._wakeup
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait_for_company(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        self._wakeup = waiter = loop.create_future()
        handle = loop.call_later(timeout, _resolve, waiter)
        try:
            await waiter
        finally:
            self._wakeup = None
            handle.cancel()

    async def _lead(self, me: _Pending) -> None:
        """Run batches from the head of the queue until ``me`` has been computed."""
        loop = asyncio.get_running_loop()
        limit = self._policy.max_batch_size
        while not me.computed:
            if self._batching and self._rows_queued < limit and not self._closing:
                remaining = self._queue[0].enqueued + self._policy.max_delay_s - loop.time()
                if remaining > 0:
                    await self._wait_for_company(remaining)
                    continue
            batch = self._take_batch()
            if batch:
                await self._execute(batch)

    def _hand_off(self) -> None:
        """Pass the lead to the first caller still waiting, if any."""
        queue = self._queue
        while queue and queue[0].future.done() and not queue[0].lead:
            gone = queue.popleft()  # cancelled or deadline passed: skip the work
            self._rows_queued -= len(gone.rows)
        if queue and self._started:
            head = queue[0]
            head.lead = self._leading = True
            if not head.future.done():
                head.future.set_result(None)
            return
        self._leading = False
        if self._drained is not None and not queue:
            self._drained.set()

    def _take_batch(self) -> list[_Pending]:
        batch: list[_Pending] = []
        rows = 0
        limit = self._policy.max_batch_size
        queue = self._queue
        while queue and (not batch or rows + len(queue[0].rows) <= limit):
            pending = queue.popleft()
            self._rows_queued -= len(pending.rows)
            if pending.future.done() and not pending.lead:  # the caller went away
                continue
            batch.append(pending)
            rows += len(pending.rows)
        return batch

    async def _execute(self, batch: list[_Pending]) -> None:
        loop = asyncio.get_running_loop()
        start = loop.time()
        rows = batch[0].rows if len(batch) == 1 else np.concatenate([p.rows for p in batch])
        executor = self._executor
        if executor is None and len(rows) > self._policy.max_batch_size:
            if self._large is None:
                self._large = ThreadPoolExecutor(1, "fleetmind-forward-large")
            executor = self._large
        if executor is None:
            try:
                outputs = self._forward(rows)
            except Exception as exc:
                _fail(batch, len(rows), exc)
                return
            self._complete(batch, start, outputs)
            return
        work = loop.run_in_executor(executor, self._forward, rows)
        try:
            outputs = await asyncio.shield(work)
        except asyncio.CancelledError:
            # The leader's caller went away mid-batch: the others still get their rows.
            work.add_done_callback(partial(self._complete_later, batch, start))
            raise
        except Exception as exc:
            _fail(batch, len(rows), exc)
            return
        self._complete(batch, start, outputs)

    def _complete_later(
        self, batch: list[_Pending], start: float, work: asyncio.Future[Outputs]
    ) -> None:
        if work.cancelled():
            _fail(batch, 0, UnavailableError("forward pass was cancelled; retry"))
        elif (exc := work.exception()) is not None:
            _fail(batch, sum(len(p.rows) for p in batch), exc)
        else:
            self._complete(batch, start, work.result())

    def _complete(self, batch: list[_Pending], start: float, outputs: Outputs) -> None:
        compute_s = asyncio.get_running_loop().time() - start
        for pending in batch:
            pending.queue_s = start - pending.enqueued
            pending.compute_s = compute_s
        if self._observer is not None:
            self._observer(sum(len(p.rows) for p in batch), [p.queue_s for p in batch])
        if len(batch) == 1:
            _deliver(batch[0], outputs)
            return
        offset = 0
        for pending in batch:
            end = offset + len(pending.rows)
            _deliver(pending, {k: v[offset:end] for k, v in outputs.items()})
            offset = end

    async def close(self) -> None:
        """Finish what is queued, then stop; later submits raise UnavailableError."""
        self._closing = True
        self._wake()
        self._started = True
        if self._queue or self._leading:
            self._drained = asyncio.Event()
            if not self._leading:
                self._hand_off()
            await self._drained.wait()
        for executor in (self._executor, self._large):
            if executor is not None:
                executor.shutdown(wait=True)


def _deliver(pending: _Pending, outputs: Outputs) -> None:
    pending.computed = True
    pending.outputs = outputs
    if not pending.lead and not pending.future.done():
        pending.future.set_result(outputs)


def _fail(batch: list[_Pending], rows: int, exc: BaseException) -> None:
    if not isinstance(exc, FleetmindError):
        logger.error("forward pass on %d rows failed", rows, exc_info=exc)
    for pending in batch:
        pending.computed = True
        pending.error = exc
        if not pending.lead and not pending.future.done():
            pending.future.set_exception(exc)


def _result(pending: _Pending) -> Outputs:
    """A computed request's rows, or the error of its forward pass."""
    if pending.error is not None:
        raise pending.error
    if pending.outputs is None:
        raise UnavailableError("request was dropped before its batch ran; retry")
    return pending.outputs


def _timed(pending: _Pending) -> Timed:
    return Timed(_result(pending), pending.queue_s, pending.compute_s)


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
