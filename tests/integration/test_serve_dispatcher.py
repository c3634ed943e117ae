"""A trained job-shop dispatcher served with fleetmind serve drives a shop in closed loop."""

from __future__ import annotations

from pathlib import Path

import pytest

import fleetmind
from fleetmind.cli.jobshop_cmd import load_dispatcher
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
from fleetmind.envs.scenarios.jobshop.instance import random_instance, shipped_instance
from fleetmind.envs.scenarios.jobshop.learned import served_decider
from fleetmind.envs.scenarios.jobshop.schedule import check_schedule
from fleetmind.envs.scenarios.jobshop.slots import OBSERVATION_SIZE, dispatch_slots
from fleetmind.serve import Client
from fleetmind.serve.config import ServeConfig
from fleetmind.serve.repository import default_loader
from fleetmind.serve.testing import ServerThread


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("runs") / "dispatcher"
    fleetmind.train(
        "fleetmind/jobshop-queues-10x10", steps=1024, envs=2, seed=3, run_dir=path,
        progress=False,
    )  # fmt: skip
    return path


def test_served_dispatcher_gives_the_local_schedule(run_dir: Path) -> None:
    local = load_dispatcher(run_dir)
    config = ServeConfig(host="127.0.0.1", port=0, reload_interval_s=None)
    ta01, big = shipped_instance("ta01"), random_instance(20, 15, 9)
    model = BreakdownModel.for_instance(ta01)
    with ServerThread(run_dir, config, default_loader) as server:
        client = Client(f"127.0.0.1:{server.port}", timeout_s=60)
        with client:
            info = client.model_metadata("dispatcher")
            decide = served_decider(client, "dispatcher")
            served = [
                dispatch_slots(ta01, decide),
                dispatch_slots(big, decide),  # a size it was not trained on
                dispatch_slots(ta01, decide, model, seed=7),  # failures met online
            ]
    assert list(info.inputs[0].shape) == [-1, OBSERVATION_SIZE]
    expected = [local.greedy(ta01), local.greedy(big), local.greedy(ta01, model, seed=7)]
    for instance, got, want in zip((ta01, big, ta01), served, expected, strict=True):
        check_schedule(instance, got)
        assert got.operations == want.operations
        assert got.downtime == want.downtime
