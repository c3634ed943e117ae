"""A site whose spaces are not the global policy's refuses at its first round, and says
both; the run goes on without it, or stops with that line when it cannot."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from subprocess import CompletedProcess

import numpy as np
import pytest
from flwr.app import ConfigRecord, Message, MessageType, RecordDict
from tests.federated.procs import SRC
from tests.federated.test_strategies import reply, start_round

from fleetmind.core.errors import ConfigError
from fleetmind.federated.client_app import refuse
from fleetmind.federated.settings import FederationSettings
from fleetmind.federated.site_training import SiteTrainer, SpaceMismatchError, spaces_of
from fleetmind.federated.strategies import build_strategy
from fleetmind.runtime.run_dir import read_metrics

CARTPOLE = {"observation-space": "box(4,) float32", "action-space": "discrete(2)"}


pytestmark = pytest.mark.usefixtures("task_identity")


def settings(**kw: object) -> FederationSettings:
    base: dict[str, object] = {"env_id": "CartPole-v1", "sites": 2, "local_steps": 64}
    return FederationSettings(**{**base, **kw})  # type: ignore[arg-type]


def test_the_global_spaces_are_described_as_the_network_sees_them() -> None:
    parts = SiteTrainer(settings(), 0, params={}).build(1, seed=1)
    parts.env.close()
    assert spaces_of(parts) == CARTPOLE


def test_a_site_on_other_spaces_refuses_naming_both() -> None:
    site = SiteTrainer(settings(), 1, env_id="Acrobot-v1", params={}, expected_spaces=CARTPOLE)
    with pytest.raises(SpaceMismatchError) as caught:
        site.train({}, server_round=1)
    assert str(caught.value) == (
        "site 1: its observation space is box(6,) float32, the global policy's is "
        "box(4,) float32; its action space is discrete(3), the global policy's is discrete(2)"
    )
    with pytest.raises(SpaceMismatchError, match="observation space is box"):
        site.evaluate({}, episodes=1, seed=1)


def refusal(site: int, reason: str) -> Message:
    request = Message(
        content=RecordDict({"config": ConfigRecord()}),
        dst_node_id=1,
        message_type=MessageType.TRAIN,
    )
    out = refuse(request, site, SpaceMismatchError(reason))
    return Message(content=out.content, dst_node_id=1, message_type=MessageType.TRAIN)


def test_the_guard_leaves_a_refusing_site_out_and_names_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    guard = build_strategy(settings(sites=3), None)
    start_round(guard, 3, np.zeros(4))
    replies = [reply(np.ones(4)), reply(3 * np.ones(4)), refusal(2, "site 2: its action ...")]
    arrays, _ = guard.aggregate_train(1, replies)
    assert arrays is not None
    assert np.allclose(arrays.to_numpy_ndarrays()[0], 2.0)
    assert guard.rounds[1].refused == {2}
    assert guard.refusals == {2: "site 2: its action ..."}
    assert "site 2 refused round 1 and is left out: site 2: its action ..." in caplog.text


def test_a_run_left_without_enough_sites_stops_with_the_reason() -> None:
    guard = build_strategy(settings(sites=3, strategy="fedmedian"), None)
    start_round(guard, 3, np.zeros(4))
    replies = [reply(np.ones(4)), reply(np.ones(4)), refusal(2, "site 2: its observation ...")]
    with pytest.raises(ConfigError, match=r"2 sites trained, the strategy needs 3; site 2: its"):
        guard.aggregate_train(1, replies)


def test_a_refusal_carries_only_the_site_and_its_reason() -> None:
    out = refusal(1, "why")
    assert list(out.content) == ["refusal"]
    assert dict(out.content["refusal"]) == {"site": 1, "reason": "why"}  # type: ignore[call-overload]


SCRIPT = """
import sys
import fleetmind.federated.run as run
from fleetmind.cli.main import main


def other_env_for(sites):
    def mod(message, context, call_next):
        if int(context.node_config["partition-id"]) in sites:
            context.node_config["env-id"] = "Acrobot-v1"
            context.node_config["env-params"] = ""
        return call_next(message, context)
    return mod


simulate = run.simulate
refusing = {int(s) for s in sys.argv[1].split(",")}
run.simulate = lambda settings, client_mods=(): simulate(settings, [other_env_for(refusing)])
sys.exit(main(sys.argv[2:]))
"""


def federate_with_refusing_sites(refusing: str, sites: int, run_dir: Path) -> CompletedProcess[str]:
    command = [sys.executable, "-c", SCRIPT, refusing, "federate", "CartPole-v1"]
    command += ["--sites", str(sites), "--rounds", "2", "--local-steps", "128"]
    command += ["--eval-episodes", "1", "--run-dir", str(run_dir), "--json"]
    env = {**os.environ, "PYTHONPATH": str(SRC)}
    return subprocess.run(
        command, env=env, capture_output=True, text=True, timeout=300, check=False
    )


@pytest.mark.slow
def test_a_real_run_goes_on_without_the_refusing_site(tmp_path: Path) -> None:
    done = federate_with_refusing_sites("1", 2, tmp_path / "run")
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["rounds"] == 2
    assert "site 1: its observation space is box(6,) float32" in summary["refused_sites"]["1"]
    rows = read_metrics(tmp_path / "run")
    assert [row["refused_sites"] for row in rows] == [[1], [1]]
    assert [len(row["site_returns"]) for row in rows] == [1, 1]
    assert done.stderr.count("site 1 refused round") == 1


@pytest.mark.slow
def test_a_run_no_site_can_train_is_exit_2_one_line(tmp_path: Path) -> None:
    done = federate_with_refusing_sites("0", 1, tmp_path / "run")
    assert done.returncode == 2, done.stderr[-3000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("fleetmind federate: error: round 1 cannot go on: 0 sites trained")
    assert "its action space is discrete(3), the global policy's is discrete(2)" in last
