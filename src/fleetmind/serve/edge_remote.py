"""The two kinds of place an edge client decides at: its local agent and remote targets.

:class:`Remote` and :class:`LocalPolicy` are the seams of
:class:`fleetmind.serve.offloading.OffloadingClient`; tests pass fakes, the client
builds :class:`GrpcRemote` (one :class:`fleetmind.serve.Client` per target) and
:class:`LocalAgent` (a checkpoint loaded in process, as ``fleetmind serve`` loads it).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from fleetmind.core.agent import Agent, Decision
from fleetmind.core.errors import InvalidInputError
from fleetmind.serve.client import Client
from fleetmind.serve.response import COMPUTE_TIME, QUEUE_TIME


@dataclass(frozen=True)
class RemoteAnswer:
    """A remote target's action and the seconds the server spent on it."""

    action: np.ndarray
    server_s: float
    """Queue plus compute time the server reported (0 when it reports none)."""


class Remote(Protocol):
    """One remote target: a served model reachable over the network."""

    name: str
    """How logs and metrics name it (its address)."""

    def observation_shape(self, timeout_s: float) -> tuple[int, ...]:
        """Per-row observation shape the served model takes."""
        ...

    def act(self, observation: np.ndarray, timeout_s: float) -> RemoteAnswer:
        """The served model's action for one observation; raises on failure or timeout."""
        ...

    def reconnected(self) -> Remote:
        """The same target over a new connection (for a probe after a cut link)."""
        ...

    def close(self) -> None:
        """Release the connection."""
        ...


class LocalPolicy(Protocol):
    """The agent on the edge."""

    observation_shape: tuple[int, ...]

    def act(self, observation: np.ndarray) -> np.ndarray:
        """The local agent's action for one (checked) observation."""
        ...


ClientFactory = Callable[[str], Client]
"""Makes the SDK client of one target (deadlines, tokens and TLS set by the caller)."""


class GrpcRemote:
    """A ``fleetmind serve`` target reached with the SDK :class:`Client`."""

    def __init__(self, target: str, model: str, connect: ClientFactory) -> None:
        self.name = target
        self.model = model
        self._connect = connect
        self._client = connect(target)

    def observation_shape(self, timeout_s: float) -> tuple[int, ...]:
        info = self._client.model_metadata(self.model, timeout_s=timeout_s)
        if not info.inputs:
            raise InvalidInputError(f"model {self.model!r} at {self.name} declares no input")
        return tuple(int(d) for d in info.inputs[0].shape[1:])

    def act(self, observation: np.ndarray, timeout_s: float) -> RemoteAnswer:
        reply = self._client.infer_reply(
            self.model, observation[None], outputs=("action",), timeout_s=timeout_s
        )
        server_us = int(reply.parameters.get(QUEUE_TIME, 0)) + int(
            reply.parameters.get(COMPUTE_TIME, 0)
        )
        return RemoteAnswer(reply.outputs["action"][0], server_us / 1e6)

    def reconnected(self) -> GrpcRemote:
        return GrpcRemote(self.name, self.model, self._connect)

    def close(self) -> None:
        self._client.close()


class LocalAgent:
    """An agent decided in process by its frozen decider, as the server runs it."""

    def __init__(self, agent: Agent) -> None:
        self.observation_shape = tuple(agent.observation_space.shape)
        self._decide: Callable[[np.ndarray], Decision] = agent.frozen_decider()
        self._lock = threading.Lock()  # the client's prober may time it concurrently

    @classmethod
    def load(cls, path: Path, loader: str | None = None) -> LocalAgent:
        """The agent of a checkpoint, loaded as ``fleetmind serve --loader`` would."""
        from fleetmind.serve.repository import resolve_loader

        return cls(resolve_loader(loader)(path).agent)

    def act(self, observation: np.ndarray) -> np.ndarray:
        with self._lock:
            return np.asarray(self._decide(observation[None]).actions)[0]  # type: ignore[no-any-return]
