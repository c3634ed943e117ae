"""Explanations of one served model version, computed beside the batched fast path.

An explained request still gets its outputs from the model's batcher; its
attributions (:mod:`fleetmind.serve.attribution`) are then computed in torch by the
server process's low-priority explainer process
(:mod:`fleetmind.serve.explain_process`), so the event loop keeps answering plain
requests meanwhile and never shares its GIL with an integral::

    explainer = Explainer(agent, "cartpole", ExplainProcess())
    explainer.check()                                  # InvalidInputError: cannot explain
    attributions = await explainer.attributions(rows)  # [B, *obs_shape] FP32
    await explainer.close()                            # the version is unloaded

At most :data:`MAX_PENDING` explained requests wait per model version; beyond
that a request is refused with ``RESOURCE_EXHAUSTED`` rather than queued.
"""

from __future__ import annotations

import asyncio

import numpy as np

from fleetmind.core.agent import Agent
from fleetmind.core.errors import InvalidInputError, OverloadedError
from fleetmind.serve.explain_process import ExplainProcess

ATTRIBUTIONS = "attributions"
"""Name of the output tensor an explained request gets (FP32, the observation's shape)."""
ATTRIBUTIONS_DATATYPE = "FP32"
"""Its datatype."""
EXPLAIN_PARAMETER = "explain"
"""Request parameter (a bool) that asks for an explanation."""
MAX_PENDING = 16
"""Explained requests that may wait for one model version."""


class Explainer:
    """Attributions of one model version's decisions, bounded and out of the server
    process."""

    def __init__(
        self, agent: Agent, model_name: str, process: ExplainProcess | None = None
    ) -> None:
        self.agent = agent
        self.model_name = model_name
        self._owns_process = process is None
        self.process = process or ExplainProcess()
        """Where the attributions are computed (shared by the server's model versions)."""
        self._key = self.process.register()
        self._reason: str | None = None
        self._checked = False
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

    async def attributions(self, rows: np.ndarray) -> np.ndarray:
        """The ``[B, *obs_shape]`` attributions of ``rows``, from the explainer process."""
        self.check()
        if self._pending >= MAX_PENDING:
            raise OverloadedError(
                f"model {self.model_name!r} already has {MAX_PENDING} explanations waiting; "
                "retry later or send the request without an explanation"
            )
        self._pending += 1
        task = asyncio.ensure_future(self.process.attribute(self._key, self.agent, rows))
        task.add_done_callback(self._finished)
        # a caller that gives up (deadline) still counts until its integral is done
        attributions: np.ndarray = await asyncio.shield(task)
        return attributions

    def _finished(self, task: asyncio.Future[np.ndarray]) -> None:
        self._pending -= 1
        if not task.cancelled():
            task.exception()  # seen, even when its caller gave up

    async def close(self) -> None:
        """Drop this version from the explainer process (stop it if it is this one's)."""
        if self._owns_process:
            await self.process.close()
        else:
            await self.process.forget(self._key)
