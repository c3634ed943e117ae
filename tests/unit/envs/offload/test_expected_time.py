"""E[T] = sum_i p_i (t_i + sum_{j != i} t_ij): hand-computed plans, bad plans, the CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fleetmind.cli.main import main
from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.offload import OffloadPlan, expected_completion_time


@pytest.mark.parametrize(
    ("p", "t", "delays", "expected"),
    [
        ([1.0], [0.5], [[0.0]], 0.5),
        # the diagonal t_ii is no move and does not count
        ([0.25, 0.75], [1.0, 2.0], [[9.0, 3.0], [4.0, 9.0]], 0.25 * (1 + 3) + 0.75 * (2 + 4)),
        (
            [0.2, 0.3, 0.5],
            [1.0, 2.0, 3.0],
            [[0.0, 1.0, 2.0], [3.0, 0.0, 4.0], [5.0, 6.0, 0.0]],
            0.2 * (1 + 1 + 2) + 0.3 * (2 + 3 + 4) + 0.5 * (3 + 5 + 6),
        ),
        # two vehicles (nodes 0, 1), an edge server (node 2) and the cloud (node 3)
        ([0.5, 0.5], [0.1, 0.2], [[0, 0, 0.3, 0], [0, 0, 0, 0.4]], 0.5 * 0.4 + 0.5 * 0.6),
    ],
    ids=["one-task", "diagonal-ignored", "three-tasks", "more-nodes-than-tasks"],
)
def test_formula_on_hand_computed_plans(
    p: list[float], t: list[float], delays: list[list[float]], expected: float
) -> None:
    assert expected_completion_time(p, t, delays) == pytest.approx(expected, rel=1e-12)
    assert OffloadPlan.of(p, t, delays).expected_time() == pytest.approx(expected, rel=1e-12)


def test_all_local_plan_is_the_mean_local_time() -> None:
    p = np.array([0.1, 0.2, 0.3, 0.4])
    t = np.array([4.0, 3.0, 2.0, 1.0])
    assert expected_completion_time(p, t, np.zeros((4, 6))) == pytest.approx(2.0)


@pytest.mark.parametrize(
    ("p", "t", "delays", "message"),
    [
        ([0.5, 0.4], [1, 1], [[0, 0], [0, 0]], "sum to 0.9; give non-negative task probabilities"),
        ([1.2, -0.2], [1, 1], [[0, 0], [0, 0]], "give non-negative task probabilities"),
        ([float("nan"), 1.0], [1, 1], [[0, 0], [0, 0]], "that sum to 1"),
        ([0.5, 0.5], [1, -0.5], [[0, 0], [0, 0]], "execution times contain a negative time"),
        ([0.5, 0.5], [1, 1], [[0, -2], [0, 0]], "transfer delays contain a negative time"),
        ([0.5, 0.5], [1, float("inf")], [[0, 0], [0, 0]], "contain NaN or infinity"),
        ([0.5, 0.5], [1], [[0, 0], [0, 0]], "2 probabilities but 1 execution times"),
        ([0.5, 0.5], [1, 1], [[0], [0]], "shape (2, 1)"),
        ([], [], [], "non-empty list"),
        ([0.5, 0.5], [1, 1], [[0, 0], [0]], "not numbers in a regular array"),
    ],
    ids=[
        "sum",
        "negative-p",
        "nan-p",
        "negative-t",
        "negative-delay",
        "inf",
        "lengths",
        "columns",
        "empty",
        "ragged",
    ],
)
def test_bad_plans_are_refused(p: Any, t: Any, delays: Any, message: str) -> None:
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        expected_completion_time(p, t, delays)


def _write(tmp_path: Path, data: object) -> Path:
    path = tmp_path / "plan.json"
    path.write_text(json.dumps(data))
    return path


def test_cli_prints_expected_time(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    plan = {"probabilities": [0.25, 0.75], "exec_times_s": [1, 2],
            "transfer_delays_s": [[0, 3], [4, 0]]}  # fmt: skip
    assert main(["expected-time", str(_write(tmp_path, plan)), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {"expected_time_s": 5.5, "tasks": 2}
    assert main(["expected-time", str(_write(tmp_path, plan))]) == 0
    assert "E[T] = 5.5 s over 2 tasks" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("plan", "message"),
    [
        (
            {
                "probabilities": [0.5, 0.4],
                "exec_times_s": [1, 1],
                "transfer_delays_s": [[0, 0], [0, 0]],
            },
            "sum to 0.9",
        ),
        ({"probabilities": [1], "exec_times_s": [-1], "transfer_delays_s": [[0]]}, "negative"),
        ({"probabilities": [1], "exec_times_s": [1]}, "exactly the keys"),
        ([1, 2], "must be a JSON object"),
    ],
    ids=["sum", "negative", "missing-key", "not-object"],
)
def test_cli_bad_plan_is_one_line_and_exit_2(
    plan: object, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["expected-time", str(_write(tmp_path, plan))]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert len(err.strip().splitlines()) == 1
    assert "Traceback" not in err


def test_cli_missing_or_broken_plan_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["expected-time", str(tmp_path / "none.json")]) == 2
    assert "does not exist" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert main(["expected-time", str(broken)]) == 2
    assert "is not valid JSON" in capsys.readouterr().err
