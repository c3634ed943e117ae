"""Pipelined pushes: an actor hands finished chunks to a sender thread and steps on.

::

    pushes = PushPipeline(client, depth=1)
    loop:
        collect a chunk                  # while the previous chunk travels
        pushes.submit(msg)               # blocks only while ``depth`` chunks wait
        reply = pushes.check()           # the newest answer; raises a failed push
    pushes.close()                       # drops what waits, joins the thread

With ``prefetch`` on (async mode) the sender thread also fetches the version a
push answer announces, so the loop only loads it (:meth:`take_weights`).

The queue is bounded (``depth`` chunks wait while one is in flight), so a slow
learner slows the actor down instead of filling its memory. A push that fails
stores its error, drops the chunks queued behind it (they belong to the same
session) and the next :meth:`submit`, :meth:`check` or :meth:`settle` raises the
error in the actor's own thread, where it is handled as a push in the loop would be.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque

from fleetmind.core.errors import ConfigError
from fleetmind.core.exchange import Chunk, LearnerClient, PushReply, SessionInfo, Weights

log = logging.getLogger("fleetmind.actor")


class PushPipeline:
    """Sends trajectory chunks from a thread of its own, at most ``depth`` waiting."""

    def __init__(self, client: LearnerClient, depth: int = 1) -> None:
        if depth < 1:
            raise ConfigError(f"push queue depth={depth} must be at least 1")
        self._client = client
        self._depth = depth
        self._cond = threading.Condition()
        self._queue: deque[Chunk] = deque()
        self._in_flight = False
        self._error: BaseException | None = None
        self._closed = False
        self.reply: PushReply | None = None
        """The answer to the latest successful push."""
        self.sent = 0
        """Chunks the learner answered."""
        self.dropped = 0
        """Chunks dropped unsent (behind a failed push, after a new session, at close)."""
        self.push_s = 0.0
        """Seconds the sender thread spent in calls (pushes, prefetches), overlapping the loop."""
        self.prefetch = False
        """Fetch the version a push answer announces (async mode)."""
        self.session: SessionInfo | None = None
        """The session chunks are sent for (prefetches ask for it)."""
        self._have = -1
        self._weights: Weights | None = None
        self._thread = threading.Thread(target=self._run, name="push", daemon=True)
        self._thread.start()

    def submit(self, msg: Chunk) -> None:
        """Queue a chunk; waits while ``depth`` chunks wait already. Raises a failed push."""
        with self._cond:
            self._raise_error()
            while len(self._queue) >= self._depth and self._error is None and not self._closed:
                self._cond.wait()
            self._raise_error()
            if self._closed:
                self.dropped += 1
                return
            self._queue.append(msg)
            self._cond.notify_all()

    def check(self) -> PushReply | None:
        """The latest answer (None before the first); raises the error of a failed push."""
        with self._cond:
            self._raise_error()
            return self.reply

    def settle(self, timeout_s: float | None = None) -> PushReply | None:
        """Wait until every queued chunk was answered (at most ``timeout_s``); as check()."""
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._cond:
            while (self._queue or self._in_flight) and self._error is None:
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    break
                self._cond.wait(left)
            self._raise_error()
            return self.reply

    @property
    def pending(self) -> int:
        """Chunks queued or in flight."""
        with self._cond:
            return len(self._queue) + int(self._in_flight)

    def loaded(self, version: int) -> None:
        """The loop loaded ``version``: prefetch only newer ones."""
        with self._cond:
            self._have = max(self._have, version)

    def take_weights(self, have: int) -> Weights | None:
        """Prefetched weights newer than ``have`` (the loop loads them); raises as check()."""
        with self._cond:
            self._raise_error()
            self._have = max(self._have, have)
            weights, self._weights = self._weights, None
            return weights if weights is not None and weights.version > have else None

    def discard(self, timeout_s: float) -> None:
        """A new session starts: drop queued chunks, let a push in flight end (at most
        ``timeout_s``), and forget its answer or error (they belong to the old session)."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            self.dropped += len(self._queue)
            self._queue.clear()
            while self._in_flight and (left := deadline - time.monotonic()) > 0:
                self._cond.wait(left)
            self._queue.clear()
            self._error = None
            self.reply = None
            self._weights = None
            self._have = -1

    def close(self, timeout_s: float) -> bool:
        """Drop what waits, let a push in flight finish (at most ``timeout_s``), join.

        False when the thread was still inside a call after ``timeout_s``.
        """
        with self._cond:
            self._closed = True
            self.dropped += len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            log.warning("a push was still in flight %.0fs after the actor stopped", timeout_s)
            return False
        return True

    def _raise_error(self) -> None:
        error, self._error = self._error, None
        if error is not None:
            raise error

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._closed:
                    self._cond.wait()
                if not self._queue:
                    return
                msg = self._queue.popleft()
                self._in_flight = True
                self._cond.notify_all()
            self._send(msg)

    def _send(self, msg: Chunk) -> None:
        t = time.monotonic()
        error: BaseException | None = None
        reply: PushReply | None = None
        try:
            reply = self._client.push([msg])
            self._prefetch(reply)
        except Exception as exc:  # handed to the actor's loop, which decides
            error = exc
        with self._cond:
            self.push_s += time.monotonic() - t
            self._in_flight = False
            if reply is not None:
                self.sent += 1
                self.reply = reply
            if error is not None:
                self._error = error
                self.dropped += len(self._queue)
                self._queue.clear()
            self._cond.notify_all()

    def _prefetch(self, reply: PushReply) -> None:
        with self._cond:
            have = max(self._have, self._weights.version if self._weights else -1)
            session = self.session
        if not self.prefetch or session is None or reply.done or reply.version <= have:
            return
        weights, _ = self._client.weights(session, have, 0.0)
        if weights is None:
            return
        with self._cond:
            self._weights = weights
