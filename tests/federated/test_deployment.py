"""Flower's deployment engine: SuperLink and SuperNodes as processes, TLS, node keys."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from tests.federated.procs import no_process_left, run_federate

from fleetmind.core.errors import AuthenticationError
from fleetmind.federated.deployment import Deployment
from fleetmind.runtime.evaluate import evaluate
from fleetmind.runtime.run_dir import read_metrics


@pytest.mark.slow
def test_a_supernode_without_a_registered_key_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mark = uuid.uuid4().hex
    monkeypatch.setenv("FLEETMIND_TEST_RUN", mark)
    with Deployment(tmp_path) as fleet:
        fleet.start_superlink()
        fleet.add_site(0)  # registered: admitted
        with pytest.raises(AuthenticationError, match="refused site 1's SuperNode"):
            fleet.add_site(1, register=False)
    assert no_process_left(mark)


@pytest.mark.slow
def test_a_two_site_deployment_over_tls_completes_and_evaluates(tmp_path: Path) -> None:
    run_dir = tmp_path / "run"
    flags = ["--sites", "2", "--engine", "deployment", "--rounds", "2"]
    summary = run_federate(run_dir, *flags, "--local-steps", "256", "--eval-episodes", "2")
    assert summary["rounds"] == 2
    assert [len(row["site_returns"]) for row in read_metrics(run_dir)] == [2, 2]
    assert evaluate(run_dir, episodes=2).episodes == 2
    assert "SuperNode ID" in (run_dir / "deployment" / "site-0.log").read_text()
    assert not list((run_dir / "deployment").glob("*.key"))
    assert not list(run_dir.rglob("site-0"))
