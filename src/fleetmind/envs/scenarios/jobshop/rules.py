"""Priority dispatching rules, and right-shift repair of a schedule under breakdowns.

At each decision point a rule starts the waiting job it ranks first (ties: the
lowest job index):

=========  ===============================================================
``spt``    shortest processing time of the next operation
``mwkr``   most work remaining (the job's operations not yet completed)
``mopnr``  most operations remaining
``fifo``   first in the queue: the job that has waited longest
=========  ===============================================================

:func:`right_shift_repair` keeps a schedule's order on every machine and pushes
operations later, as little as needed, past each repair interval: the classic
reactive repair of a plan made before the breakdowns were known.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable, Sequence

import numpy as np

from fleetmind.core.errors import UnknownNameError
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
from fleetmind.envs.scenarios.jobshop.dispatch import Dispatcher
from fleetmind.envs.scenarios.jobshop.instance import JobShopInstance
from fleetmind.envs.scenarios.jobshop.schedule import Downtime, Operation, Schedule

Priority = Callable[[Dispatcher], np.ndarray]
"""A rule: one score per job; the waiting job with the lowest score starts."""


def _spt(shop: Dispatcher) -> np.ndarray:
    index = np.minimum(shop.next_op, shop.instance.num_ops - 1)
    return shop.instance.durations[np.arange(shop.instance.num_jobs), index].astype(float)


def _mwkr(shop: Dispatcher) -> np.ndarray:
    return -shop.remaining_work().astype(float)


def _mopnr(shop: Dispatcher) -> np.ndarray:
    return (shop.next_op - shop.instance.num_ops).astype(float)


def _fifo(shop: Dispatcher) -> np.ndarray:
    return shop.job_ready.astype(float)


RULES: dict[str, Priority] = {"spt": _spt, "mwkr": _mwkr, "mopnr": _mopnr, "fifo": _fifo}
"""Every rule by name."""


def lookup_rule(name: str) -> Priority:
    """The rule ``name``; UnknownNameError with close matches otherwise."""
    rule = RULES.get(name)
    if rule is None:
        close = difflib.get_close_matches(name, list(RULES), n=2, cutoff=0.4)
        hint = f" Did you mean {', '.join(close)}?" if close else ""
        raise UnknownNameError(
            f"unknown dispatching rule {name!r}; choose one of {', '.join(RULES)}.{hint}"
        )
    return rule


def rule_choice(shop: Dispatcher, rule: Priority) -> int:
    """The waiting job ``rule`` starts at the current decision point."""
    scores = np.where(shop.candidates(), rule(shop), np.inf)
    return int(np.argmin(scores))


def dispatch_rule(
    instance: JobShopInstance,
    name: str,
    model: BreakdownModel | None = None,
    seed: int = 0,
) -> Schedule:
    """The schedule the rule ``name`` builds (online, under ``model``'s breakdowns if given)."""
    rule = lookup_rule(name)
    shop = Dispatcher(instance, model, seed)
    while not shop.done:
        shop.dispatch(rule_choice(shop, rule))
    return shop.schedule()


def _shift_past(start: int, duration: int, intervals: Sequence[tuple[int, int]]) -> int:
    """The earliest start >= ``start`` of a run of ``duration`` that meets no interval."""
    moved = True
    while moved:
        moved = False
        for down_start, down_end in intervals:
            if start < down_end and down_start < start + max(duration, 1):
                start, moved = down_end, True
    return start


def right_shift_repair(
    schedule: Schedule, repairs: Sequence[Sequence[tuple[int, int]]]
) -> Schedule:
    """``schedule`` repaired for each machine's repair intervals ``repairs[machine]``:
    operations keep their order on every machine and in every job and start as
    early as that order and the repairs allow."""
    job_free: dict[int, int] = {}
    machine_free: dict[int, int] = {}
    out = []
    for op in sorted(schedule.operations, key=lambda o: (o.start, o.machine)):
        duration = op.end - op.start
        start = max(job_free.get(op.job, 0), machine_free.get(op.machine, 0))
        start = _shift_past(start, duration, repairs[op.machine])
        out.append(Operation(op.job, op.index, op.machine, start, start + duration))
        job_free[op.job] = machine_free[op.machine] = start + duration
    makespan = max((op.end for op in out), default=0)
    downtime = [
        Downtime(machine, start, end)
        for machine, intervals in enumerate(repairs)
        for start, end in intervals
        if start < makespan
    ]
    return Schedule(out, downtime)
