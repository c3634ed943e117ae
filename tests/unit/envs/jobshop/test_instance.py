"""Instance files in both formats, the shipped Taillard data, seeded generation, bad files."""

from pathlib import Path

import numpy as np
import pytest

from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.instance import (
    TAILLARD_OPTIMA,
    load_instance,
    parse_instance,
    random_instance,
    shipped_instance,
    to_orlib_text,
    to_taillard_text,
)

ORLIB = """instance tiny
 a comment line the OR-Library puts above the data
2 3
0 3 1 2 2 2
0 2 2 1 1 4
"""

TAILLARD = """Nb of jobs, Nb of Machines, Time seed, Machine seed, Upper bound, Lower bound
2 3 1 2 10 9
Times
3 2 2
2 1 4
Machines
1 2 3
1 3 2
"""


def test_both_formats_read_to_the_same_instance() -> None:
    orlib = parse_instance(ORLIB)
    taillard = parse_instance(TAILLARD)
    for instance in (orlib, taillard):
        assert instance.machines.tolist() == [[0, 1, 2], [0, 2, 1]]
        assert instance.durations.tolist() == [[3, 2, 2], [2, 1, 4]]
        assert (instance.num_jobs, instance.num_machines) == (2, 3)


def test_writers_round_trip() -> None:
    instance = random_instance(4, 3, seed=5)
    for text in (to_orlib_text(instance), to_taillard_text(instance)):
        again = parse_instance(text)
        assert np.array_equal(again.machines, instance.machines)
        assert np.array_equal(again.durations, instance.durations)


def test_shipped_taillard_instances_carry_their_optima() -> None:
    assert list(TAILLARD_OPTIMA.values()) == [
        1231, 1244, 1218, 1175, 1224, 1238, 1227, 1217, 1274, 1241
    ]  # fmt: skip
    for name, optimum in TAILLARD_OPTIMA.items():
        instance = shipped_instance(name)
        assert (instance.num_jobs, instance.num_machines, instance.optimum) == (15, 15, optimum)
        assert instance.lower_bound() <= optimum
        assert (np.sort(instance.machines, axis=1) == np.arange(15)).all()  # each machine once
    ta01 = shipped_instance("ta01")
    assert ta01.durations[0, :5].tolist() == [94, 66, 10, 53, 26]
    assert ta01.machines[0, :5].tolist() == [6, 12, 4, 7, 3]
    assert shipped_instance("ft06").optimum == 55


def test_random_instances_repeat_with_their_seed() -> None:
    a, b, c = random_instance(7, 5, seed=3), random_instance(7, 5, seed=3), random_instance(7, 5, 4)
    assert np.array_equal(a.durations, b.durations)
    assert np.array_equal(a.machines, b.machines)
    assert not np.array_equal(a.durations, c.durations)
    assert a.durations.min() >= 1
    assert a.durations.max() <= 99
    assert (np.sort(a.machines, axis=1) == np.arange(5)).all()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "2 3\n0 3 1 2 2 2\n0 2 5 1 1 4\n",
            "line 3: job 1 operation 1: machine 5 out of range 0..2",
        ),
        (
            "2 3\n0 3 1 -2 2 2\n0 2 2 1 1 4\n",
            "line 2: job 0 operation 1: negative processing time -2",
        ),
        ("2 3\n0 3 1 2 2 2\n0 2 2 1\n", "line 3: job 1 is missing operations: 2 machine-duration"),
        ("2 3\n0 3 1 2 2 2\n", "truncated: expected 2 job lines, found 1 (file ends after line 2)"),
        (
            TAILLARD.replace("1 3 2\n", "1 3 4\n"),
            "line 8: job 1 operation 2: machine 4 out of range 1..3",
        ),
        (
            TAILLARD.replace("2 1 4\n", "2 -1 4\n"),
            "line 5: job 1 operation 1: negative processing time -1",
        ),
        (
            TAILLARD.replace("2 1 4\n", "2 1\n"),
            "line 5: job 1 is missing operations: 2 values, expected 3",
        ),
        (
            TAILLARD.rsplit("1 3 2", 1)[0],
            "truncated: expected 4 duration and machine lines, found 3",
        ),
        ("", "the file holds no numbers"),
    ],
)
def test_bad_files_name_their_line(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_instance(text, source="bad.txt")
    assert message in str(info.value)
    assert str(info.value).startswith("bad.txt: ")
    assert "\n" not in str(info.value)


def test_load_instance_reads_a_file(tmp_path: Path) -> None:
    path = tmp_path / "tiny.txt"
    path.write_text(ORLIB)
    assert load_instance(path).name == "tiny"
