"""A SuperNode killed mid-run: its round finishes with the other sites, the run
completes, and the site rejoins with its key and takes part again.

The SuperLink learns that a SuperNode died from its missing heartbeats (two 30 s
intervals), so the round it dies in takes a minute longer."""

from __future__ import annotations

import json
import signal
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from tests.federated.procs import no_process_left, three_site_run

from fleetmind.federated.deployment import Deployment
from fleetmind.runtime.run_dir import read_metrics

ROUNDS = 3


def rows_written(run_dir: Path, count: int, timeout_s: float = 300.0) -> list[dict[str, Any]]:
    """metrics.jsonl once it has ``count`` rows."""
    deadline = time.monotonic() + timeout_s
    while len(rows := read_metrics(run_dir)) < count:
        assert time.monotonic() < deadline, f"{len(rows)} of {count} rounds in time"
        time.sleep(0.5)
    return rows


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_a_killed_site_leaves_its_round_to_the_rest_and_rejoins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark, settings = three_site_run(tmp_path, monkeypatch, rounds=ROUNDS)
    run_dir = tmp_path / "run"
    result: dict[str, Any] = {}
    with Deployment(tmp_path / "fleet") as fleet:
        fleet.start_superlink()
        for site in range(3):
            fleet.add_site(site)
        runner = threading.Thread(target=lambda: result.update(fleet.run(settings)))
        runner.start()
        rows_written(run_dir, 1)
        [victim] = [p for name, p, _ in fleet.processes if name == "site-2"]
        victim.send_signal(signal.SIGKILL)  # no goodbye: the SuperLink learns it from silence
        victim.wait()
        rows_written(run_dir, 2)
        fleet.start_site(2, name="site-2-again")
        runner.join(timeout=600)
        assert not runner.is_alive()
    rows = read_metrics(run_dir)
    assert result["rounds"] == ROUNDS
    assert [len(row["site_returns"]) for row in rows][:2] == [3, 2]
    assert rows[1]["failed_sites"] == 1
    assert len(rows[-1]["site_returns"]) == 3  # back once it rejoined
    assert json.loads((run_dir / "summary.json").read_text())["rounds"] == ROUNDS
    assert no_process_left(mark)
