"""Decisions of a served agent or team, for evaluating it through the server::

    with Client("localhost:8001") as client:
        deciders = remote_deciders(client, "grid")        # a DeciderSource
        evaluate("runs/grid", episodes=5, seed=0, deciders=deciders)

A single agent is asked as model ``grid``; agent ``tl_0_1`` of a team as
``grid.tl_0_1`` (:mod:`fleetmind.serve.team`).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from fleetmind.serve.client import Client
from fleetmind.serve.team import member_name


def remote_deciders(
    client: Client, model: str, version: str = ""
) -> Callable[[str | None], Callable[[np.ndarray], np.ndarray]]:
    """The decider of each agent (``None``: the single agent) as calls to ``model``."""

    def source(agent: str | None) -> Callable[[np.ndarray], np.ndarray]:
        name = model if agent is None else member_name(model, agent)

        def decide(observations: np.ndarray) -> np.ndarray:
            rows = np.asarray(observations, dtype=np.float32)
            return client.infer(name, rows, version=version, outputs=("action",))["action"]

        return decide

    return source
