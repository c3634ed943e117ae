"""A federated run on Flower's simulation engine leaves an ordinary run directory."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.federated.procs import run_federate

from fleetmind.cli.main import main
from fleetmind.federated.accountant import epsilon_spent
from fleetmind.runtime.run_dir import read_metrics

ROUNDS = 2


@pytest.fixture(scope="module")
def federated_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, object]]:
    run_dir = tmp_path_factory.mktemp("federated") / "run"
    config = run_dir.parent / "sites.yaml"
    config.write_text("sites:\n  - {length: 0.4, masscart: 1.0}\n  - {length: 0.8}\n")
    flags = ["--sites", "2", "--rounds", str(ROUNDS), "--local-steps", "256"]
    flags += ["--eval-episodes", "2", "--dp-noise", "0.7", "--dp-clip", "2.0"]
    return run_dir, run_federate(run_dir, *flags, "--site-config", str(config), timeout=240)


def test_the_summary_reports_the_privacy_spent(
    federated_run: tuple[Path, dict[str, object]],
) -> None:
    _, summary = federated_run
    assert summary["rounds"] == ROUNDS
    assert summary["noise_multiplier"] == 0.7
    assert summary["delta"] == 1e-5
    assert summary["sample_fraction"] == 1.0
    assert summary["epsilon"] == pytest.approx(epsilon_spent(0.7, ROUNDS, 2, 2, 1e-5))


def test_each_round_has_a_row(federated_run: tuple[Path, dict[str, object]]) -> None:
    run_dir, _ = federated_run
    rows = read_metrics(run_dir)
    assert [r["round"] for r in rows] == list(range(1, ROUNDS + 1))
    for row in rows:
        assert len(row["site_returns"]) == 2
        assert row["update_norm_mean"] > 0
        assert 0 <= row["clipped_fraction"] <= 1
        assert row["epsilon"] == pytest.approx(epsilon_spent(0.7, row["round"], 2, 2, 1e-5))
    assert rows[0]["epsilon"] < rows[-1]["epsilon"]
    assert (run_dir / "curve.png").is_file()
    assert json.loads((run_dir / "config.json").read_text())["federated"]["sites"] == 2


def test_the_global_checkpoint_evaluates(
    federated_run: tuple[Path, dict[str, object]], capsys: pytest.CaptureFixture[str]
) -> None:
    run_dir, _ = federated_run
    assert main(["eval", str(run_dir), "--episodes", "3", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["episodes"] == 3
    assert result["mean_return"] > 0
