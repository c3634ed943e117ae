"""Schedules and their feasibility checker.

A :class:`Schedule` gives every operation its machine, start and end, and every
machine's downtime (repairs and maintenance). :func:`check_schedule` is the one
gate every method's schedule passes before it is reported; it raises
InvalidInputError naming the first operation that breaks a rule:

* every operation of the instance appears once, on its own machine, for exactly
  its processing time, starting at time 0 or later;
* a job's operations run in order, each after the previous one ends;
* a machine runs one operation at a time;
* nothing runs on a machine while it is down (broken or maintained).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fleetmind.core.errors import ConfigError, InvalidInputError, NotFoundError
from fleetmind.envs.scenarios.jobshop.instance import JobShopInstance


@dataclass(frozen=True)
class Operation:
    """Operation ``index`` of ``job``, run on ``machine`` over ``[start, end)``."""

    job: int
    index: int
    machine: int
    start: int
    end: int


@dataclass(frozen=True)
class Downtime:
    """``machine`` is down over ``[start, end)``; ``kind`` is ``repair`` or ``maintenance``."""

    machine: int
    start: int
    end: int
    kind: str = "repair"


@dataclass
class Schedule:
    """Operations and downtime; :attr:`makespan` is when the last operation ends."""

    operations: list[Operation]
    downtime: list[Downtime] = field(default_factory=list)

    @property
    def makespan(self) -> int:
        return max((op.end for op in self.operations), default=0)

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready object (what ``fleetmind jobshop solve --json`` writes)."""
        return {
            "makespan": self.makespan,
            "operations": [vars(op) for op in sorted(self.operations, key=_by_time)],
            "downtime": [vars(d) for d in sorted(self.downtime, key=_by_time)],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any], source: str = "schedule") -> Schedule:
        """The schedule ``to_json`` wrote; ConfigError when fields are missing."""
        try:
            ops = [Operation(**{k: int(o[k]) for k in _OP_KEYS}) for o in data["operations"]]
            down = [
                Downtime(int(d["machine"]), int(d["start"]), int(d["end"]), str(d["kind"]))
                for d in data.get("downtime", [])
            ]
        except (KeyError, TypeError, ValueError) as exc:
            raise ConfigError(
                f"{source}: not a schedule ({exc!r}); it needs 'operations' with "
                f"{', '.join(_OP_KEYS)} each"
            ) from None
        return cls(ops, down)


_OP_KEYS = ("job", "index", "machine", "start", "end")


def _by_time(item: Operation | Downtime) -> tuple[int, int]:
    return item.start, item.machine


def load_schedule(path: str | Path) -> Schedule:
    """The schedule in the JSON file ``path``."""
    try:
        data = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise NotFoundError(f"schedule file {path} does not exist") from None
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read schedule file {path}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a schedule is a JSON object with 'operations'")
    return Schedule.from_json(data, str(path))


def _name(op: Operation) -> str:
    return f"job {op.job} operation {op.index}"


def _check_operations(instance: JobShopInstance, schedule: Schedule) -> None:
    seen: set[tuple[int, int]] = set()
    for op in schedule.operations:
        if not (0 <= op.job < instance.num_jobs and 0 <= op.index < instance.num_ops):
            raise InvalidInputError(f"{_name(op)} is not an operation of {instance.name}")
        if (op.job, op.index) in seen:
            raise InvalidInputError(f"{_name(op)} is scheduled twice")
        seen.add((op.job, op.index))
        machine = int(instance.machines[op.job, op.index])
        duration = int(instance.durations[op.job, op.index])
        if op.machine != machine:
            raise InvalidInputError(f"{_name(op)} runs on machine {op.machine}, not {machine}")
        if op.start < 0 or op.end - op.start != duration:
            raise InvalidInputError(
                f"{_name(op)} runs [{op.start}, {op.end}); it needs {duration} time units "
                "from time 0 or later"
            )
    for job in range(instance.num_jobs):
        for index in range(instance.num_ops):
            if (job, index) not in seen:
                raise InvalidInputError(f"job {job} operation {index} is not scheduled")


def _check_precedence(schedule: Schedule) -> None:
    ops = {(op.job, op.index): op for op in schedule.operations}
    for op in schedule.operations:
        before = ops.get((op.job, op.index - 1))
        if before is not None and op.start < before.end:
            raise InvalidInputError(
                f"{_name(op)} starts at {op.start}, before job {op.job} operation "
                f"{before.index} ends at {before.end} (precedence)"
            )


def _check_machines(schedule: Schedule) -> None:
    events: list[tuple[int, int, int, int, str]] = []
    for op in schedule.operations:
        if op.end > op.start:  # an operation of zero time occupies nothing
            events.append((op.machine, op.start, op.end, 1, _name(op)))
    for down in schedule.downtime:
        what = f"{down.kind} of machine {down.machine} [{down.start}, {down.end})"
        events.append((down.machine, down.start, down.end, 0, what))
    events.sort()
    latest = None  # the interval that ends last so far on the same machine
    for event in events:
        if latest is not None and latest[0] == event[0] and event[1] < latest[2]:
            _overlap(latest, event)
        if latest is None or latest[0] != event[0] or event[2] > latest[2]:
            latest = event


def _overlap(first: tuple[int, int, int, int, str], second: tuple[int, int, int, int, str]) -> None:
    """Raise for two intervals that overlap on one machine (two downtimes may)."""
    op, other = (first, second) if first[3] else (second, first)
    if not op[3]:
        return
    if not other[3]:
        raise InvalidInputError(
            f"{op[4]} runs [{op[1]}, {op[2]}) on machine {op[0]} during its {other[4]}"
        )
    raise InvalidInputError(
        f"{second[4]} overlaps {first[4]} on machine {first[0]} "
        f"([{second[1]}, {second[2]}) and [{first[1]}, {first[2]}))"
    )


def check_schedule(instance: JobShopInstance, schedule: Schedule) -> None:
    """Raise InvalidInputError naming the first operation that breaks a rule (see the
    module docstring); return None when the schedule is feasible."""
    _check_operations(instance, schedule)
    _check_precedence(schedule)
    _check_machines(schedule)
