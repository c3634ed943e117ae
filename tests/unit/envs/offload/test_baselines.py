"""The offloading baselines: through ``fleetmind baseline``, the exhaustive optimum on
small static instances, greedy's herding, and every bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest

from fleetmind.cli.main import main
from fleetmind.envs.scenarios.offload.catalog import SCENARIOS
from fleetmind.envs.scenarios.offload.evaluation import run_baseline
from fleetmind.envs.scenarios.offload.policies import POLICIES
from fleetmind.envs.scenarios.offload.simulator import CLOUD, EDGE, LOCAL
from fleetmind.envs.scenarios.offload.static_batch import (
    MAX_BATCH,
    all_placements,
    exhaustive_optimum,
    greedy_placement,
    mean_completion_time,
    static_instance,
)

TOY = "fleetmind/offload-toy"
CONTENTION = "fleetmind/offload-contention"


def test_cli_baseline_prints_one_json_object(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["baseline", TOY, "--policy", "greedy", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["env_id"] == TOY
    assert result["policy"] == "greedy"
    assert result["tasks"] > 0
    assert 0 < result["mean_completion_time_s"] < 1
    assert 0 <= result["deadline_miss_rate"] <= 1
    assert result["mean_energy_j"] > 0
    assert len(result["episodes"]) == 1


def test_cli_baseline_text(capsys: pytest.CaptureFixture[str]) -> None:
    args = ["baseline", TOY, "--policy", "all-local", "--episodes", "2"]
    assert main([*args, "--set", "episode_steps=50"]) == 0
    out = capsys.readouterr().out
    for name in ("mean_completion_time_s", "deadline_miss_rate", "mean_energy_j", "per episode"):
        assert name in out


@pytest.mark.parametrize("policy", POLICIES)
def test_every_baseline_runs_and_places_as_it_says(policy: str) -> None:
    result = run_baseline(TOY, policy, episodes=2, seed=3, overrides={"episode_steps": 60})
    assert result["tasks"] > 0
    shares = [result["share_local"], result["share_edge"], result["share_cloud"]]
    assert sum(shares) == pytest.approx(1.0)
    fixed = {"all-local": LOCAL, "all-edge": EDGE, "all-cloud": CLOUD}
    if policy in fixed:
        assert shares[fixed[policy]] == 1.0
    if policy in ("random", "round-robin"):
        assert min(shares) > 0.15
    again = run_baseline(TOY, policy, episodes=2, seed=3, overrides={"episode_steps": 60})
    assert again == result


def _baseline_placements(size: int, batch_greedy: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "all-local": np.full(size, LOCAL),
        "all-edge": np.full(size, EDGE),
        "all-cloud": np.full(size, CLOUD),
        "random": rng.integers(0, 3, size),
        "round-robin": np.arange(size) % 3,
        "greedy": batch_greedy,
    }


@pytest.mark.parametrize("env_id", list(SCENARIOS))
@pytest.mark.parametrize("warmup", [0, 15])
def test_exhaustive_optimum_is_at_most_every_baseline(env_id: str, warmup: int) -> None:
    config = SCENARIOS[env_id]
    for seed in range(3):
        batch = static_instance(config, seed, min(MAX_BATCH, config.vehicles), warmup)
        places, best = exhaustive_optimum(batch)
        assert mean_completion_time(batch, places)[0] == pytest.approx(best)
        for name, other in _baseline_placements(batch.size, greedy_placement(batch)).items():
            assert best <= mean_completion_time(batch, other)[0] + 1e-12, name


def test_exhaustive_optimum_tries_every_placement() -> None:
    assert all_placements(10).shape == (3**10, 10)
    assert len({tuple(row) for row in all_placements(4)}) == 81
    batch = static_instance(SCENARIOS[CONTENTION], seed=0, tasks=4)
    _, best = exhaustive_optimum(batch)
    brute = min(mean_completion_time(batch, np.array(p))[0] for p in all_placements(4).tolist())
    assert best == pytest.approx(brute)


def test_greedy_herds_in_the_contention_scenario() -> None:
    # Ten vehicles place a task at once; each sees an idle edge server (its last report)
    # and sends its task there. The optimum spreads them over the edge and the cloud.
    config = SCENARIOS[CONTENTION]
    greedy, best = [], []
    for seed in range(5):
        batch = static_instance(config, seed, MAX_BATCH)
        herd = greedy_placement(batch)
        assert (herd == EDGE).all()
        greedy.append(mean_completion_time(batch, herd)[0])
        places, value = exhaustive_optimum(batch)
        assert (places == CLOUD).any()
        best.append(value)
    assert np.mean(greedy) > 1.15 * np.mean(best)


def test_greedy_herds_over_whole_episodes() -> None:
    # With reports a second old, greedy fleets swing between an idle-looking edge server
    # and the cloud; sending everything to the cloud does better.
    greedy = run_baseline(CONTENTION, "greedy", episodes=3, seed=0)
    cloud = run_baseline(CONTENTION, "all-cloud", episodes=3, seed=0)
    assert greedy["mean_completion_time_s"] > 1.2 * cloud["mean_completion_time_s"]
    assert greedy["deadline_miss_rate"] > cloud["deadline_miss_rate"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ([TOY, "--policy", "greedy", "--set", "edge_servers=0"], "edge_servers=0 is invalid"),
        ([TOY, "--policy", "greedy", "--set", "arrival_rate=-2"], "arrival_rate=-2.0 must be"),
        ([TOY, "--policy", "greedy", "--set", "bandwidth_hz=-5"], "bandwidth_hz=-5.0 must be"),
        ([TOY, "--policy", "greedier"], "unknown baseline policy 'greedier'"),
        (["fleetmind/offload-50", "--policy", "optimum"], "at most 10 vehicles"),
        (["fleetmind/offload-tiny", "--policy", "greedy"], "unknown offloading scenario"),
        (["CartPole-v1", "--policy", "greedy"], "has no baseline policies"),
        ([TOY, "--policy", "greedy", "--set", "no_such_key=1"], "no_such_key"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(
    args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["baseline", *args]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
