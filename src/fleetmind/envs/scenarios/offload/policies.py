"""Hand-written placement policies, the baselines learned agents are compared with.

Each maps the simulator's state to every vehicle's place (``[M]``: 0 local,
1 edge, 2 cloud; vehicles without a new task are ignored):

* ``all-local``, ``all-edge``, ``all-cloud``: always the same place;
* ``random``: a uniformly random place per task;
* ``round-robin``: each vehicle cycles local, edge, cloud over its own tasks;
* ``greedy``: the place with the least predicted completion time, from what the
  vehicle knows (its own queues, its link, the last, stale, backlog report of its
  edge server); every vehicle decides alone, so they herd onto a server that
  looked idle;
* ``optimum``: each step, the exhaustive optimum of the step's new tasks given the
  true state (:mod:`.static_batch`): every placement of the batch is tried and the
  least mean completion time wins. It needs at most 10 vehicles.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable

import numpy as np

from fleetmind.core.errors import ConfigError, UnknownNameError
from fleetmind.envs.scenarios.offload.simulator import CLOUD, EDGE, LOCAL, OffloadSimulator
from fleetmind.envs.scenarios.offload.static_batch import (
    MAX_BATCH,
    batch_from_simulator,
    exhaustive_optimum,
)

Placement = Callable[[OffloadSimulator], np.ndarray]
"""Every vehicle's place for its new task, from the simulator's state."""

POLICIES = ("all-local", "all-edge", "all-cloud", "random", "round-robin", "greedy", "optimum")
"""The baseline names ``fleetmind baseline --policy`` accepts."""


def _constant(place: int) -> Placement:
    return lambda sim: np.full(sim.config.vehicles, place, np.int64)


def _random(seed: int) -> Placement:
    rng = np.random.default_rng(seed)
    return lambda sim: rng.integers(LOCAL, CLOUD + 1, sim.config.vehicles)


def _round_robin() -> Placement:
    turn: np.ndarray | None = None

    def place(sim: OffloadSimulator) -> np.ndarray:
        nonlocal turn
        if turn is None:
            turn = np.zeros(sim.config.vehicles, np.int64)
        out = turn % 3
        turn = turn + sim.has_task
        return out

    return place


def greedy(sim: OffloadSimulator) -> np.ndarray:
    """The place each vehicle predicts to finish its task soonest."""
    out: np.ndarray = np.argmin(sim.predicted_times(), axis=1)
    return out


def optimum(sim: OffloadSimulator) -> np.ndarray:
    """The exhaustive optimum of this step's new tasks, given the true state."""
    out = np.zeros(sim.config.vehicles, np.int64)
    batch = batch_from_simulator(sim)
    places, _ = exhaustive_optimum(batch)
    out[batch.vehicle] = places
    return out


def make_policy(name: str, vehicles: int, seed: int = 0) -> Placement:
    """A fresh baseline by name (``seed`` drives ``random``); UnknownNameError otherwise."""
    if name not in POLICIES:
        close = difflib.get_close_matches(name, POLICIES, n=3, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(
            f"unknown baseline policy {name!r}; choose one of {', '.join(POLICIES)}.{hint}"
        )
    if name == "optimum" and vehicles > MAX_BATCH:
        raise ConfigError(
            f"baseline optimum tries all 3**n placements of a step's tasks and takes at most "
            f"{MAX_BATCH} vehicles; this scenario has {vehicles}: use greedy, or a scenario "
            f"with at most {MAX_BATCH} vehicles (--set vehicles={MAX_BATCH})"
        )
    makers: dict[str, Callable[[], Placement]] = {
        "all-local": lambda: _constant(LOCAL),
        "all-edge": lambda: _constant(EDGE),
        "all-cloud": lambda: _constant(CLOUD),
        "random": lambda: _random(seed),
        "round-robin": _round_robin,
        "greedy": lambda: greedy,
        "optimum": lambda: optimum,
    }
    return makers[name]()
