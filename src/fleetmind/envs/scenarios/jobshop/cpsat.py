"""The exact reference: OR-Tools CP-SAT on the job shop, with a time limit.

One interval per operation, job order as precedences, one no-overlap constraint
per machine, minimise the makespan. Given each machine's repair intervals (a
clairvoyant solver that knows the breakdowns in advance), those join the
machine's no-overlap as fixed intervals: no online method can beat its optimum,
and ``bound`` (CP-SAT's proven lower bound) is a bound even when the time limit
stops it early.

OR-Tools is the optional extra ``jobshop`` (``pip install 'fleetmind[jobshop]'``);
without it :func:`solve_cpsat` raises ConfigError saying so.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.instance import JobShopInstance
from fleetmind.envs.scenarios.jobshop.schedule import Downtime, Operation, Schedule

INSTALL_HINT = (
    "CP-SAT needs OR-Tools, which is not installed; install the extra with "
    "pip install 'fleetmind[jobshop]'"
)


@dataclass(frozen=True)
class CpsatResult:
    """What CP-SAT found within its time limit."""

    schedule: Schedule
    optimal: bool
    """True when CP-SAT proved the makespan optimal."""
    bound: int
    """CP-SAT's lower bound on the makespan."""
    wall_s: float


def _cp_model() -> Any:
    try:
        from ortools.sat.python import cp_model
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    return cp_model


def solve_cpsat(
    instance: JobShopInstance,
    time_limit_s: float = 10.0,
    repairs: Sequence[Sequence[tuple[int, int]]] | None = None,
    hint: Schedule | None = None,
    upper_bound: int | None = None,
    workers: int = 1,
    seed: int = 0,
) -> CpsatResult:
    """Minimise the makespan of ``instance``, the machines down over ``repairs[machine]``
    if given (every interval that starts before ``upper_bound``, the makespan of a
    known feasible schedule, when that is given); ``hint`` (a feasible schedule)
    starts the search. ConfigError when no schedule is found within ``time_limit_s``."""
    if time_limit_s <= 0:
        raise ConfigError(f"CP-SAT time limit must be positive, got {time_limit_s}")
    cp_model = _cp_model()
    model = cp_model.CpModel()
    horizon = int(instance.durations.sum())
    for intervals in repairs or ():
        horizon += sum(end - start for start, end in intervals)
    if upper_bound is not None:
        horizon = min(horizon, upper_bound)
    starts, ends = {}, {}
    per_machine: dict[int, list[Any]] = {k: [] for k in range(instance.num_machines)}
    for (job, index), machine in _operations(instance):
        duration = int(instance.durations[job, index])
        start = model.new_int_var(0, horizon, f"s{job}_{index}")
        end = model.new_int_var(0, horizon, f"e{job}_{index}")
        per_machine[machine].append(model.new_interval_var(start, duration, end, f"i{job}_{index}"))
        starts[job, index], ends[job, index] = start, end
        if index:
            model.add(start >= ends[job, index - 1])
    for machine, intervals in enumerate(repairs or ()):
        for down_start, down_end in intervals:
            if down_start < horizon:
                per_machine[machine].append(
                    model.new_fixed_size_interval_var(down_start, down_end - down_start, "down")
                )
    for intervals in per_machine.values():
        model.add_no_overlap(intervals)
    makespan = model.new_int_var(0, horizon, "makespan")
    model.add_max_equality(
        makespan, [ends[j, instance.num_ops - 1] for j in range(instance.num_jobs)]
    )
    model.minimize(makespan)
    for op in hint.operations if hint else ():
        model.add_hint(starts[op.job, op.index], op.start)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit_s)
    solver.parameters.num_workers = workers
    solver.parameters.random_seed = seed
    status = solver.solve(model)
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        raise ConfigError(
            f"CP-SAT found no schedule of {instance.name} within {time_limit_s} s "
            f"({solver.status_name(status)}); raise the time limit"
        )
    operations = [
        Operation(j, k, m, solver.value(starts[j, k]), solver.value(ends[j, k]))
        for (j, k), m in _operations(instance)
    ]
    makespan_value = max(op.end for op in operations)
    downtime = [
        Downtime(machine, start, end)
        for machine, intervals in enumerate(repairs or ())
        for start, end in intervals
        if start < makespan_value
    ]
    return CpsatResult(
        Schedule(operations, downtime),
        optimal=status == cp_model.OPTIMAL,
        bound=int(solver.best_objective_bound),
        wall_s=float(solver.wall_time),
    )


def _operations(instance: JobShopInstance) -> list[tuple[tuple[int, int], int]]:
    return [
        ((job, index), int(instance.machines[job, index]))
        for job in range(instance.num_jobs)
        for index in range(instance.num_ops)
    ]
