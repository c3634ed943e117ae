"""`fleetmind jobshop warn`, `maintain` and `solve --gantt`: results, and one-line errors."""

import json
from pathlib import Path

import pytest

from fleetmind.cli.main import main

SMALL = ("--tune-seeds", "0:1", "--test-seeds", "1000:1002", "--horizon", "2000")


def run(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capfd.readouterr()
    return code, out, err


def error_line(capfd: pytest.CaptureFixture[str], *argv: str) -> str:
    code, _, err = run(capfd, "jobshop", *argv)
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_solve_draws_a_gantt_chart(capfd: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    out = tmp_path / "ft06.png"
    code, text, _ = run(
        capfd, "jobshop", "solve", "ft06", "--method", "mwkr", "--breakdowns", "3", "--mtbf",
        "40", "--gantt", str(out),
    )  # fmt: skip
    assert code == 0
    assert "makespan=" in text
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert 5_000 < out.stat().st_size < 200_000


@pytest.mark.parametrize(
    ("where", "message"),
    [("missing/chart.png", "does not exist"), (".", "is a folder"),
     ("chart.txt", "give a .png, .svg or .pdf")],
)  # fmt: skip
def test_an_unwritable_gantt_path_is_refused_before_solving(
    capfd: pytest.CaptureFixture[str], tmp_path: Path, where: str, message: str
) -> None:
    path = tmp_path / where
    line = error_line(capfd, "solve", "ft06", "--method", "cpsat", "--gantt", str(path))
    assert line.startswith(f"fleetmind jobshop: error: --gantt {path}")
    assert message in line


def test_warn_reports_precision_recall_and_lead_time(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capfd, "jobshop", "warn", "--train-seeds", "0:3", "--test-seeds", "100:102", "--json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["failures"] == 2 * 10 * 10
    assert 0.8 < data["precision"] <= 1
    assert 0.7 < data["recall"] <= 1
    assert 0 < data["lead_median"] <= data["horizon"]
    assert len(data["sweep"]) == 19
    code, out, _ = run(capfd, "jobshop", "warn", "--train-seeds", "0:2", "--test-seeds", "9:10")
    assert code == 0
    assert "precision" in out.splitlines()[1]
    assert "lead time" in out.splitlines()[1]


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--train-seeds", "4:4", "--test-seeds", "9:10"), "seed range '4:4' is empty"),
     (("--train-seeds", "0:2", "--test-seeds", "9:3"), "seed range '9:3' is empty"),
     (("--train-seeds", "a:b", "--test-seeds", "9:10"), "give A:B, two integers"),
     (("--train-seeds", "5", "--test-seeds", "9:10"), "seed range '5': give A:B"),
     (("--train-seeds", "0:2", "--test-seeds", "9:10", "--threshold", "1"), "(0, 1)")],
)  # fmt: skip
def test_warn_refuses_bad_seed_ranges(
    capfd: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    assert message in error_line(capfd, "warn", *args)


def test_maintain_compares_the_baselines(capfd: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capfd, "jobshop", "maintain", *SMALL, "--repair-cost", "500", "--json")
    assert code == 0
    data = json.loads(out)
    assert data["costs"] == {"downtime": 1.0, "repair": 500.0, "maintenance": 20.0}
    rows = {row["policy"]: row for row in data["rows"]}
    assert set(rows) == {"run-to-failure", "fixed interval", "warning threshold"}
    assert rows["warning threshold"]["cost_rate"] < rows["run-to-failure"]["cost_rate"]


@pytest.mark.parametrize(
    ("args", "message"),
    [(("--repair-cost", "-5"), "repair must be >= 0, got -5.0"),
     (("--downtime-cost", "-0.5"), "downtime must be >= 0, got -0.5"),
     (("--maintenance-cost", "nan"), "maintenance must be >= 0, got nan"),
     (("--test-seeds", "7:7"), "seed range '7:7' is empty"),
     (("--horizon", "0"), "horizon must be >= 1")],
)  # fmt: skip
def test_maintain_refuses_bad_costs_and_ranges(
    capfd: pytest.CaptureFixture[str], args: tuple[str, ...], message: str
) -> None:
    assert message in error_line(capfd, "maintain", *args)


def test_a_policy_trained_with_fleetmind_is_compared(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    code, _, err = run(
        capfd, "train", "fleetmind/maintenance-v0", "--steps", "256", "--envs", "2",
        "--run-dir", str(run_dir), "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run(capfd, "jobshop", "maintain", *SMALL, "--agent", str(run_dir), "--json")
    assert code == 0
    learned = json.loads(out)["rows"][-1]
    assert learned["policy"] == f"agent {run_dir}"
    assert learned["cost_rate"] > 0
    missing = error_line(capfd, "maintain", *SMALL, "--agent", str(tmp_path / "none"))
    assert str(tmp_path / "none") in missing


def test_an_agent_of_another_env_is_refused(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run_dir = tmp_path / "cartpole"
    code, _, err = run(
        capfd, "train", "CartPole-v1", "--steps", "64", "--envs", "1", "--run-dir",
        str(run_dir), "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    line = error_line(capfd, "maintain", *SMALL, "--agent", str(run_dir))
    assert "was trained on CartPole-v1, not fleetmind/maintenance-v0" in line


@pytest.mark.slow
def test_ppo_learns_to_beat_the_best_fixed_interval(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    run_dir = tmp_path / "run"
    code, _, err = run(
        capfd, "train", "fleetmind/maintenance-v0", "--steps", "40000", "--envs", "8",
        "--seed", "1", "--run-dir", str(run_dir), "--no-progress",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run(
        capfd, "jobshop", "maintain", "--tune-seeds", "0:5", "--test-seeds", "1000:1010",
        "--agent", str(run_dir), "--json",
    )  # fmt: skip
    rows = {row["policy"]: row["cost_rate"] for row in json.loads(out)["rows"]}
    learned = rows[f"agent {run_dir}"]
    assert learned < rows["fixed interval"] < rows["run-to-failure"]
