"""The SUMO back end on real SUMO (skipped when SUMO is not installed).

These tests drive SUMO through TraCI (a child process) so that one pytest
process can hold several simulations and kill one on purpose.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from pettingzoo.test import parallel_api_test, parallel_seed_test

from fleetmind.core.errors import (
    ConfigError,
    EnvironmentStepError,
    InvalidInputError,
    NotFoundError,
)
from fleetmind.envs.scenarios.traffic import make_traffic_env
from fleetmind.envs.scenarios.traffic.evaluation import run_baseline
from fleetmind.envs.scenarios.traffic.sumo_setup import sumo_available

pytestmark = [
    pytest.mark.sumo,
    pytest.mark.skipif(
        not sumo_available(), reason="SUMO is not installed (pip install '.[sumo]')"
    ),
]

TRACI: dict[str, Any] = {"backend": "traci", "episode_seconds": 100}


def test_parallel_api_on_the_2x2_grid() -> None:
    env = make_traffic_env("sumo-grid2x2", TRACI)
    try:
        parallel_api_test(env, num_cycles=25)
    finally:
        env.close()


def test_parallel_seed() -> None:
    parallel_seed_test(lambda: make_traffic_env("sumo-single", TRACI))


def test_baselines_report_metrics_and_max_pressure_beats_fixed_time() -> None:
    overrides = {**TRACI, "episode_seconds": 200}
    fixed = run_baseline("sumo-grid2x2", "fixed-time", episodes=1, seed=3, overrides=overrides)
    pressure = run_baseline("sumo-grid2x2", "max-pressure", episodes=1, seed=3, overrides=overrides)
    queue = run_baseline("sumo-grid2x2", "longest-queue", episodes=1, seed=3, overrides=overrides)
    for result in (fixed, pressure, queue):
        assert result["throughput_vehicles"] > 0
        assert result["mean_travel_time_s"] > result["mean_waiting_time_s"] >= 0
    assert pressure["mean_waiting_time_s"] < fixed["mean_waiting_time_s"]


def test_fixed_time_plan_comes_from_the_network() -> None:
    env = make_traffic_env("sumo-grid2x2", TRACI)
    try:
        plans = env.fixed_green_times()
        assert plans["1"] == [33.0, 6.0, 33.0, 6.0]
    finally:
        env.close()


def test_action_outside_the_phase_set_names_the_agent() -> None:
    env = make_traffic_env("sumo-grid2x2", TRACI)
    try:
        env.reset(seed=0)
        with pytest.raises(InvalidInputError, match=r"agent '5'.*outside its phase set"):
            env.step({"1": 0, "5": 9})
    finally:
        env.close()


def test_missing_and_broken_network_files_are_named(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere.net.xml"
    with pytest.raises(NotFoundError, match=r"nowhere\.net\.xml"):
        make_traffic_env("sumo-grid2x2", {**TRACI, "net_file": str(missing)})
    broken = tmp_path / "broken.net.xml"
    broken.write_text("<net><edge id='a'>")
    with pytest.raises(ConfigError, match=r"broken.net.xml.*does not parse"):
        make_traffic_env("sumo-grid2x2", {**TRACI, "net_file": str(broken)})
    routes = tmp_path / "routes.xml"
    routes.write_text("<additional/>")
    with pytest.raises(ConfigError, match=r"routes.xml.*<routes>"):
        make_traffic_env("sumo-grid2x2", {**TRACI, "route_file": str(routes)})


def test_sumo_dying_mid_episode_is_an_error_and_reset_recovers() -> None:
    env = make_traffic_env("sumo-grid2x2", TRACI)
    try:
        env.reset(seed=1)
        env.step(dict.fromkeys(env.agents, 0))
        process = env._sumo.sumo._process  # the SUMO child process
        process.kill()
        process.wait()
        with pytest.raises(EnvironmentStepError, match=r"SUMO stopped.*call reset\(\)"):
            env.step(dict.fromkeys(env.agents, 0))
        observations, _ = env.reset(seed=1)
        assert set(observations) == {"1", "2", "5", "6"}
        env.step(dict.fromkeys(env.agents, 1))
    finally:
        env.close()


def test_cli_baseline_json_on_libsumo() -> None:
    """A fresh process picks libsumo; SUMO's own output must not spoil stdout."""
    out = subprocess.run(
        [sys.executable, "-m", "fleetmind", "baseline", "sumo-single", "--policy", "max-pressure",
         "--set", "episode_seconds=200", "--json"],
        capture_output=True, text=True, timeout=120, check=False,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["throughput_vehicles"] > 0
    assert len(result["episodes"]) == 1


def test_a_second_libsumo_simulation_in_one_process_is_refused() -> None:
    script = (
        "from fleetmind.core.errors import PreconditionError\n"
        "from fleetmind.envs.scenarios.traffic import make_traffic_env\n"
        "a = make_traffic_env('sumo-single', {'backend': 'libsumo', 'episode_seconds': 50})\n"
        "a.reset(seed=0)\n"
        "try:\n"
        "    make_traffic_env('sumo-single', {'backend': 'libsumo'})\n"
        "except PreconditionError as exc:\n"
        "    print('refused:', exc)\n"
        "a.close()\n"
        "b = make_traffic_env('sumo-single', {'backend': 'libsumo', 'episode_seconds': 50})\n"
        "b.reset(seed=0)\n"
        "print('second env after close:', sorted(b.agents))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False
    )
    assert out.returncode == 0, out.stderr
    assert "refused: libsumo runs one SUMO simulation per process" in out.stdout
    assert "second env after close: ['t']" in out.stdout
