"""`fleetmind jobshop solve` and `check`: checked schedules; one-line errors for bad input."""

import json
from pathlib import Path

import pytest

from fleetmind.cli.main import main

FT06 = Path(__file__).parents[3] / "src/fleetmind/envs/scenarios/jobshop/data/ft06.txt"


def run(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["jobshop", *argv])
    out, err = capfd.readouterr()
    return code, out, err


def error_line(capfd: pytest.CaptureFixture[str], *argv: str) -> str:
    code, _, err = run(capfd, *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_solve_prints_the_schedule_and_check_accepts_it(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    code, out, _ = run(capfd, "solve", str(FT06), "--method", "mwkr")
    assert code == 0
    assert out.startswith("ft06 (6x6)  method=mwkr  makespan=61, optimum 55, gap 10.9%")
    assert len(out.splitlines()) == 2 + 36
    saved = tmp_path / "s.json"
    code, out, _ = run(
        capfd, "solve", "ft06", "--method", "cpsat", "--breakdowns", "3", "--json",
        "--output", str(saved),
    )  # fmt: skip
    data = json.loads(out)
    assert code == 0
    assert data == json.loads(saved.read_text())
    assert data["optimal"]
    assert data["bound"] <= data["makespan"]
    assert data["breakdown_seed"] == 3
    assert len(data["operations"]) == 36
    code, out, _ = run(capfd, "check", str(FT06), str(saved))
    assert code == 0
    assert "feasible" in out


def test_a_broken_schedule_is_refused_by_check(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run(capfd, "solve", "ft06", "--method", "spt", "--output", str(tmp_path / "s.json"))
    data = json.loads((tmp_path / "s.json").read_text())
    data["operations"][0]["start"] += 1
    (tmp_path / "s.json").write_text(json.dumps(data))
    line = error_line(capfd, "check", "ft06", str(tmp_path / "s.json"))
    op = data["operations"][0]
    assert f"job {op['job']} operation {op['index']} runs [" in line


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("2 2\n0 3 2 2\n1 2 0 4\n", "line 2: job 0 operation 1: machine 2 out of range 0..1"),
        ("2 2\n0 3 1 -2\n1 2 0 4\n", "line 2: job 0 operation 1: negative processing time -2"),
        ("2 2\n0 3 1 2\n1 2\n", "line 3: job 1 is missing operations"),
        ("2 2\n0 3 1 2\n", "truncated: expected 2 job lines, found 1"),
    ],
)
def test_bad_instance_files(
    capfd: pytest.CaptureFixture[str], tmp_path: Path, content: str, message: str
) -> None:
    path = tmp_path / "bad.txt"
    path.write_text(content)
    line = error_line(capfd, "solve", str(path), "--method", "spt")
    assert line.startswith("fleetmind jobshop: error: ")
    assert f"{path}: {message}" in line


def test_bad_breakdown_model_and_method(capfd: pytest.CaptureFixture[str]) -> None:
    line = error_line(
        capfd, "solve", "ft06", "--method", "spt", "--breakdowns", "1", "--mttr", "-4"
    )
    assert "mean_repair_time must be positive, got -4.0" in line
    assert "r holds no checkpoints" in error_line(capfd, "solve", "ft06", "--method", "agent:r")
    assert "unknown method 'lifo'" in error_line(capfd, "solve", "ft06", "--method", "lifo")
    assert "does not exist" in error_line(capfd, "solve", "nope.txt", "--method", "spt")


def test_cpsat_without_ortools_says_how_to_install(
    capfd: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "ortools.sat.python", None)
    line = error_line(capfd, "solve", "ft06", "--method", "cpsat")
    assert "pip install 'fleetmind[jobshop]'" in line


def test_a_reader_that_goes_away_ends_the_command_quietly() -> None:
    # `fleetmind jobshop solve ... --json | head -c 1`: no traceback, the exit code of
    # a command killed by SIGPIPE (128 + 13), as Unix tools end
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "fleetmind", "jobshop", "solve", "ta01", "--method", "spt",
         "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the schedule is written
    with proc.stderr:
        err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 141, err
    assert "Traceback" not in err
