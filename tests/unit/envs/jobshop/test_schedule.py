"""The feasibility checker catches every kind of violation, naming the operation."""

import dataclasses

import pytest

from fleetmind.core.errors import InvalidInputError
from fleetmind.envs.scenarios.jobshop.instance import parse_instance
from fleetmind.envs.scenarios.jobshop.schedule import Downtime, Operation, Schedule, check_schedule

# job 0: machine 0 for 3, then machine 1 for 2; job 1: machine 1 for 2, then machine 0 for 4
INSTANCE = parse_instance("2 2\n0 3 1 2\n1 2 0 4\n", name="tiny")


def feasible() -> Schedule:
    return Schedule(
        [Operation(0, 0, 0, 0, 3), Operation(0, 1, 1, 3, 5),
         Operation(1, 0, 1, 0, 2), Operation(1, 1, 0, 3, 7)],
        [Downtime(1, 5, 9, "repair")],
    )  # fmt: skip


def with_op(position: int, **changes: int) -> Schedule:
    schedule = feasible()
    schedule.operations[position] = dataclasses.replace(schedule.operations[position], **changes)
    return schedule


def test_a_feasible_schedule_passes() -> None:
    check_schedule(INSTANCE, feasible())
    assert feasible().makespan == 7


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (
            with_op(1, start=2, end=4),
            "job 0 operation 1 starts at 2, before job 0 operation 0 ends at 3",
        ),
        (with_op(3, start=2, end=6), "overlaps job 0 operation 0 on machine 0"),
        (
            with_op(1, start=6, end=8),
            "job 0 operation 1 runs [6, 8) on machine 1 during its repair",
        ),
        (with_op(3, machine=1), "job 1 operation 1 runs on machine 1, not 0"),
        (with_op(3, end=6), "job 1 operation 1 runs [3, 6); it needs 4 time units"),
        (with_op(2, start=-2, end=0), "job 1 operation 0 runs [-2, 0)"),
        (with_op(3, job=0, index=1), "job 0 operation 1 is scheduled twice"),
        (with_op(3, job=5), "job 5 operation 1 is not an operation of tiny"),
        (Schedule(feasible().operations[:3]), "job 1 operation 1 is not scheduled"),
    ],
)
def test_each_violation_is_named(schedule: Schedule, message: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_schedule(INSTANCE, schedule)
    assert message in str(info.value)


def test_maintenance_blocks_its_machine() -> None:
    schedule = feasible()
    schedule.downtime.append(Downtime(0, 6, 8, "maintenance"))
    with pytest.raises(
        InvalidInputError,
        match=r"job 1 operation 1 runs \[3, 7\) on machine 0 during its maintenance",
    ):
        check_schedule(INSTANCE, schedule)


def test_an_overlap_hidden_behind_a_long_interval_is_caught() -> None:
    schedule = feasible()
    schedule.downtime += [Downtime(0, 10, 30), Downtime(0, 12, 14)]
    schedule.operations.append(Operation(0, 0, 0, 0, 3))  # a duplicate, to check order
    with pytest.raises(InvalidInputError, match="scheduled twice"):
        check_schedule(INSTANCE, schedule)
    late = Schedule(
        [Operation(0, 0, 0, 0, 3), Operation(0, 1, 1, 3, 5),
         Operation(1, 0, 1, 0, 2), Operation(1, 1, 0, 20, 24)],
        [Downtime(0, 5, 30), Downtime(0, 6, 8)],
    )  # fmt: skip
    with pytest.raises(InvalidInputError, match="during its repair of machine 0 \\[5, 30\\)"):
        check_schedule(INSTANCE, late)


def test_json_round_trip() -> None:
    again = Schedule.from_json(feasible().to_json())
    check_schedule(INSTANCE, again)
    assert again.makespan == 7
    assert again.downtime == feasible().downtime
