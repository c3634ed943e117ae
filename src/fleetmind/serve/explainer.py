"""Explanations of one served model version, computed beside the batched fast path.

An explained request still gets its outputs from the model's batcher; its
attributions (:mod:`fleetmind.serve.attribution`) are then computed in torch on a
worker thread, one request at a time per model version, so the event loop keeps
answering plain requests meanwhile and never waits for an integral::

    explainer = Explainer(agent, "cartpole")
    explainer.check()                                  # InvalidInputError: cannot explain
    attributions = await explainer.attributions(rows)  # [B, *obs_shape] FP32

At most :data:`MAX_PENDING` explained requests wait per model version; beyond
that a request is refused with ``RESOURCE_EXHAUSTED`` rather than queued.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import numpy as np

from fleetmind.core.agent import Agent
from fleetmind.core.errors import InvalidInputError, OverloadedError

if TYPE_CHECKING:  # torch and captum load with the first explanation, not with the server
    from fleetmind.serve.attribution import Attributor

ATTRIBUTIONS = "attributions"
"""Name of the output tensor an explained request gets (FP32, the observation's shape)."""
ATTRIBUTIONS_DATATYPE = "FP32"
"""Its datatype."""
EXPLAIN_PARAMETER = "explain"
"""Request parameter (a bool) that asks for an explanation."""
MAX_PENDING = 16
"""Explained requests that may wait for one model version."""


class Explainer:
    """Attributions of one model version's decisions, bounded and off the event loop."""

    def __init__(self, agent: Agent, model_name: str) -> None:
        self.agent = agent
        self.model_name = model_name
        self._attributor: Attributor | None = None
        self._reason: str | None = None
        self._checked = False
        self._lock: asyncio.Lock | None = None
        self._pending = 0

    def check(self) -> None:
        """InvalidInputError, saying why, when this model cannot be explained."""
        if not self._checked:
            from fleetmind.serve.attribution import not_explainable_reason

            self._reason = not_explainable_reason(self.agent)
            self._checked = True
        if self._reason is not None:
            raise InvalidInputError(
                f"model {self.model_name!r} cannot explain its decisions: {self._reason}; "
                f"send the request without parameter {EXPLAIN_PARAMETER!r}"
            )

    def compute(self, rows: np.ndarray) -> np.ndarray:
        """The ``[B, *obs_shape]`` attributions of ``rows`` (blocking)."""
        from fleetmind.serve.attribution import Attributor

        self.check()
        if self._attributor is None:
            made = Attributor.of(self.agent)
            if isinstance(made, str):
                raise InvalidInputError(f"model {self.model_name!r} cannot explain: {made}")
            self._attributor = made
        return self._attributor.attribute(rows).attributions

    async def attributions(self, rows: np.ndarray) -> np.ndarray:
        """:meth:`compute` on a worker thread, one at a time for this model version."""
        self.check()
        if self._pending >= MAX_PENDING:
            raise OverloadedError(
                f"model {self.model_name!r} already has {MAX_PENDING} explanations waiting; "
                "retry later or send the request without an explanation"
            )
        if self._lock is None:
            self._lock = asyncio.Lock()
        self._pending += 1
        try:
            async with self._lock:
                return await asyncio.to_thread(self.compute, rows)
        finally:
            self._pending -= 1
