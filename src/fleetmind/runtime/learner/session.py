"""What a learner core tracks of its actors: sessions, and the batches it trains on."""

from __future__ import annotations

import hmac
import secrets
import time
from collections.abc import Container
from dataclasses import dataclass, field

from fleetmind.core.exchange import STAGES, Chunk
from fleetmind.runtime.learner.ledger import EpisodeLedger

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


@dataclass
class Batch:
    """Chunks trained on together."""

    chunks: list[Chunk]
    """The chunks, one per actor (sync) or in arrival order (async)."""
    lags: list[int]
    """Policy lag of each chunk when the update started."""
