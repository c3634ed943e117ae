"""The mean completion time of an offloading plan, as the model states it::

    E[T] = sum_i p_i (t_i + sum_{j != i} t_ij)

=========  ===================================================================
symbol     meaning (and what it is in the offloading scenario)
=========  ===================================================================
``i``      a task; it arises at node ``i`` (in the scenario: the tasks of
           vehicle ``i``, so node ``i`` is vehicle ``i``)
``j``      a node the task may be moved to (the scenario numbers its nodes
           vehicles ``0..M-1``, edge servers ``M..M+K-1``, the cloud ``M+K``)
``p_i``    probability that a task is task ``i`` (vehicle ``i``'s share of the
           fleet's tasks: its arrival rate over the fleet's)
``t_i``    execution time of task ``i`` on the node that runs it (its
           ``cycles`` over that node's CPU speed, averaged over the task types)
``t_ij``   communication delay of moving task ``i`` from node ``i`` to node
           ``j`` (the upload at the link's Shannon rate, plus the backhaul for
           the cloud; 0 for the nodes it is not moved to)
=========  ===================================================================

The model has no queues: it is exact when no task waits for a CPU or a radio (a
light load), and a lower bound otherwise. :func:`expected_completion_time` takes
a plan as plain arrays and checks it, :func:`load_plan` reads one from a JSON
file (``fleetmind expected-time PLAN.json``); :mod:`.plans` builds the plan of a
scenario's placement.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from fleetmind.core.errors import ConfigError, InvalidInputError, NotFoundError

PROBABILITY_TOLERANCE = 1e-6
"""How far the plan's probabilities may sum from one (rounding)."""

ArrayLike = Sequence[float] | Sequence[Sequence[float]] | np.ndarray


@dataclass(frozen=True)
class OffloadPlan:
    """A plan: task probabilities, execution times and transfer delays (checked)."""

    probabilities: np.ndarray
    """``[n]`` p_i, non-negative, summing to one."""
    exec_times_s: np.ndarray
    """``[n]`` t_i, seconds, non-negative."""
    transfer_delays_s: np.ndarray
    """``[n, m]`` t_ij with ``m >= n`` nodes, seconds, non-negative; task i arises at
    node i, so ``t_ii`` is not a move and does not count."""

    @classmethod
    def of(
        cls, probabilities: ArrayLike, exec_times_s: ArrayLike, transfer_delays_s: ArrayLike
    ) -> OffloadPlan:
        """A checked plan from array-likes; ConfigError saying what to fix otherwise."""
        p = _vector("probabilities", probabilities)
        t = _vector("execution times", exec_times_s)
        delays = _array("transfer delays", transfer_delays_s)
        n = len(p)
        if len(t) != n:
            raise ConfigError(
                f"offload plan has {n} probabilities but {len(t)} execution times; give one "
                "of each per task"
            )
        if delays.ndim != 2 or delays.shape[0] != n or delays.shape[1] < n:
            raise ConfigError(
                f"offload plan transfer delays have shape {delays.shape}; give one row per task "
                f"and one column per node, at least ({n}, {n}), task i arising at node i"
            )
        _non_negative("execution times", t)
        _non_negative("transfer delays", delays)
        total = float(p.sum())
        if not np.isfinite(p).all() or (p < 0).any() or abs(total - 1.0) > PROBABILITY_TOLERANCE:
            raise ConfigError(
                f"offload plan probabilities {np.round(p, 6).tolist()} sum to {total:.6g}; "
                "give non-negative task probabilities that sum to 1"
            )
        return cls(p, t, delays)

    def expected_time(self) -> float:
        """E[T] of the plan, seconds."""
        delays = self.transfer_delays_s
        own = np.arange(len(self.probabilities))
        moved = delays.sum(axis=1) - delays[own, own]
        return float(np.dot(self.probabilities, self.exec_times_s + moved))


def expected_completion_time(
    probabilities: ArrayLike, exec_times_s: ArrayLike, transfer_delays_s: ArrayLike
) -> float:
    """E[T] = sum_i p_i (t_i + sum_{j != i} t_ij) of a checked plan (see the module)."""
    return OffloadPlan.of(probabilities, exec_times_s, transfer_delays_s).expected_time()


PLAN_KEYS = ("probabilities", "exec_times_s", "transfer_delays_s")
"""The fields of a plan file (JSON): p_i, t_i and the rows t_ij."""


def load_plan(path: Path) -> OffloadPlan:
    """Read and check a plan file: a JSON object with the fields :data:`PLAN_KEYS`."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotFoundError(f"plan file {str(path)!r} does not exist") from exc
    except OSError as exc:
        raise InvalidInputError(f"cannot read plan file {str(path)!r}: {exc.strerror}") from exc
    except UnicodeDecodeError:
        raise InvalidInputError(f"plan file {str(path)!r} is not UTF-8 text") from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InvalidInputError(f"plan file {str(path)!r} is not valid JSON: {exc}") from exc
    if not isinstance(data, dict) or set(data) != set(PLAN_KEYS):
        found = sorted(data) if isinstance(data, dict) else type(data).__name__
        raise ConfigError(
            f"plan file {str(path)!r} must be a JSON object with exactly the keys "
            f"{', '.join(PLAN_KEYS)}; found {found}"
        )
    return OffloadPlan.of(*(data[key] for key in PLAN_KEYS))


def _array(name: str, values: ArrayLike) -> np.ndarray:
    try:
        return np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"offload plan {name} are not numbers in a regular array ({exc}); give seconds"
        ) from exc


def _vector(name: str, values: ArrayLike) -> np.ndarray:
    array = _array(name, values)
    if array.ndim != 1 or len(array) == 0:
        raise ConfigError(
            f"offload plan {name} must be a non-empty list of numbers, one per task; got "
            f"shape {array.shape}"
        )
    return array


def _non_negative(name: str, values: np.ndarray) -> None:
    if not np.isfinite(values).all():
        raise ConfigError(f"offload plan {name} contain NaN or infinity; give finite seconds")
    if (values < 0).any():
        worst = float(values.min())
        raise ConfigError(
            f"offload plan {name} contain a negative time ({worst:g} s); times are seconds, "
            "zero or more"
        )
