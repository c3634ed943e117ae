"""What a learner core tracks of its actors: sessions, and the batches it trains on."""

from __future__ import annotations

import hmac
import logging
import secrets
import time
from collections.abc import Callable, Container
from dataclasses import dataclass, field

from fleetmind.core.errors import PermissionDeniedError, PreconditionError, echo
from fleetmind.core.exchange import STAGES, Chunk
from fleetmind.runtime.learner.ledger import EpisodeLedger

log = logging.getLogger("fleetmind.learner")

SECRET_BYTES = 16
"""Random bytes of a session's secret (128 bits)."""


@dataclass
class Session:
    """One registered actor."""

    session_id: str
    """Id given at registration."""
    actor_id: str
    """The actor's own stable name."""
    num_envs: int
    """Environment copies it steps."""
    last_seen: float
    """``time.monotonic()`` of its latest call."""
    secret: str = field(repr=False)
    """Proof of holding the session, given only to the actor that registered it."""
    env_steps: int = 0
    """Env steps it contributed."""
    first_chunk_at: float | None = None
    """When its first chunk arrived."""
    times: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    """Seconds it spent per stage, summed over its chunks."""
    ledger: EpisodeLedger | None = None
    """Its episodes in progress, as the learner summed them (None: no chunk yet)."""
    trusted: bool = False
    """An actor in the learner's own process: it steps the learner's own collector, so
    its chunks are taken as they are, unverified (:mod:`.checks`)."""

    @classmethod
    def open(cls, actor_id: str, num_envs: int, taken: Container[str]) -> Session:
        """A fresh session: a random id not in ``taken`` and a random secret."""
        session_id = secrets.token_hex(8)
        while session_id in taken:
            session_id = secrets.token_hex(8)
        return cls(
            session_id, actor_id, num_envs, time.monotonic(), secrets.token_hex(SECRET_BYTES)
        )

    def held_with(self, secret: str) -> bool:
        """Whether ``secret`` is this session's (compared in constant time)."""
        return hmac.compare_digest(secret.encode(), self.secret.encode())

    def steps_per_s(self, now: float) -> float:
        """Env steps per second since its first chunk."""
        if self.first_chunk_at is None or now <= self.first_chunk_at:
            return 0.0
        return self.env_steps / (now - self.first_chunk_at)


class SessionTable(dict[str, Session]):
    """The live sessions by id. A call reaches only the session whose secret it carries;
    sessions of an earlier learner incarnation are gone."""

    def __init__(self, incarnation: int, changed: Callable[[], None]) -> None:
        super().__init__()
        self.incarnation = incarnation
        self._changed = changed

    def touch(self, session_id: str, incarnation: int, secret: str) -> Session:
        """The live session of a call; FAILED_PRECONDITION for a stale one (register
        again), PERMISSION_DENIED when ``secret`` is not the session's (it stays as it was)."""
        if incarnation != self.incarnation:
            raise PreconditionError(
                f"session {echo(session_id)} belongs to learner incarnation {incarnation}, this is "
                f"{self.incarnation}: the learner restarted; register again"
            )
        session = self.get(session_id)
        if session is None:
            raise PreconditionError(
                f"unknown or expired session {echo(session_id)}; register again"
            )
        if not session.held_with(secret):
            raise PermissionDeniedError(
                f"session {echo(session_id)} belongs to the actor that registered it: a call "
                "of the session must carry the session_secret its Register returned (an "
                "actor of an older fleetmind sends none: run one version everywhere)"
            )
        session.last_seen = time.monotonic()
        return session

    def end(self, session_id: str, secret: str) -> None:
        """Training is done and the session's actor was told so: forget the session (only
        its holder can end it; anything else is ignored)."""
        session = self.get(session_id)
        if session is not None and session.held_with(secret):
            del self[session_id]

    def reap(self, timeout_s: float) -> None:
        """Drop sessions silent for longer than ``timeout_s``."""
        now = time.monotonic()
        for s in list(self.values()):
            if now - s.last_seen > timeout_s:
                self.pop(s.session_id, None)
                log.warning("actor %s dropped (silent for %.1fs)", s.actor_id, now - s.last_seen)
                self._changed()


@dataclass
class Batch:
    """Chunks trained on together."""

    chunks: list[Chunk]
    """The chunks, one per actor (sync) or in arrival order (async)."""
    lags: list[int]
    """Policy lag of each chunk when the update started."""
