"""A scenario's own measures reach `fleetmind eval` through its registry entry."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

import fleetmind
from fleetmind.envs.env_entry import EnvEntry, ScenarioMeasures, TeamDecider, team_entry
from fleetmind.envs.scenarios.coordination import CoordinationEnv
from fleetmind.runtime.evaluate import evaluate

CALLS: list[tuple[str, int, int]] = []


def count_agreements(env_id: str, decide: TeamDecider, episodes: int, seed: int) -> dict[str, Any]:
    """A stand-in scenario measure: how often the team's first two agents agree."""
    CALLS.append((env_id, episodes, seed))
    env = CoordinationEnv()
    agree = []
    for k in range(episodes):
        observations, _ = env.reset(seed=seed + k)
        actions = decide({a: np.asarray(o) for a, o in observations.items()})
        first, second = list(actions.values())[:2]
        agree.append(float(first == second))
    return {"agreement": float(np.mean(agree)), "returns": [0.0] * episodes}


def test_an_entrys_measures_are_reported_by_eval(
    register_env: Callable[[EnvEntry], None], tmp_path: Path
) -> None:
    measures = ScenarioMeasures(agent=count_agreements, team=count_agreements)
    register_env(team_entry("test/measured-v0", CoordinationEnv, measures=measures))
    fleetmind.train(
        "test/measured-v0", algo="mappo", steps=512, run_dir=tmp_path / "run", progress=False
    )
    result = evaluate(tmp_path / "run", episodes=3, seed=5)
    assert CALLS == [("test/measured-v0", 3, 5)]
    assert result.episodes == 3
    assert result.scenario_metrics is not None
    assert 0.0 <= result.scenario_metrics["agreement"] <= 1.0


def test_a_scenario_without_measures_is_measured_by_returns(
    register_env: Callable[[EnvEntry], None], tmp_path: Path
) -> None:
    register_env(team_entry("test/plain-v0", CoordinationEnv))
    fleetmind.train("test/plain-v0", algo="mappo", steps=512, run_dir=tmp_path / "run",
                    progress=False)  # fmt: skip
    result = evaluate(tmp_path / "run", episodes=2)
    assert result.scenario_metrics is None
    assert len(result.returns) == 2
