"""A dispatcher trained with fleetmind schedules any instance: greedy, online, sampled."""

import json
from pathlib import Path
from typing import Any

import pytest

import fleetmind
from fleetmind.cli.jobshop_cmd import load_dispatcher
from fleetmind.cli.main import main
from fleetmind.core.errors import ConfigError
from fleetmind.envs.scenarios.jobshop.breakdowns import BreakdownModel
from fleetmind.envs.scenarios.jobshop.instance import random_instance, shipped_instance
from fleetmind.envs.scenarios.jobshop.schedule import check_schedule
from fleetmind.envs.scenarios.jobshop.slots import dispatch_slots
from fleetmind.envs.scenarios.jobshop.solve import solve


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A dispatcher barely trained on random 10x10 shops (the contracts, not its quality)."""
    root = tmp_path_factory.mktemp("dispatcher")
    result = fleetmind.train(
        "fleetmind/jobshop-queues-10x10", algo="ppo", seed=1, steps=1024, envs=2,
        run_dir=root / "run", force=True, progress=False,
    )  # fmt: skip
    return Path(result.run_dir)


def test_greedy_is_the_local_agent_and_runs_on_sizes_it_never_saw(run: Path) -> None:
    dispatcher = load_dispatcher(run)
    agent = fleetmind.load(run)
    for instance in (shipped_instance("ta01"), random_instance(20, 15, 2)):
        schedule = dispatcher.greedy(instance)
        check_schedule(instance, schedule)
        local = dispatch_slots(instance, lambda obs: int(agent.act(obs)))  # type: ignore[union-attr]
        assert schedule.operations == local.operations


def test_online_under_breakdowns_and_sampling_never_worse_than_greedy(run: Path) -> None:
    dispatcher = load_dispatcher(run)
    instance = shipped_instance("ft06")
    model = BreakdownModel.for_instance(instance)
    online = dispatcher.greedy(instance, model, seed=5)
    check_schedule(instance, online)
    sampled = dispatcher.sample(instance, budget_s=0.3, batch=4, workers=1)
    check_schedule(instance, sampled.schedule)
    assert sampled.samples >= 1
    # two processes draw (the second forked) and pool what they drew
    pooled = dispatcher.sample(instance, budget_s=0.3, batch=4, workers=2)
    check_schedule(instance, pooled.schedule)
    assert pooled.workers == 2
    assert sampled.workers == 1
    assert pooled.schedule.makespan <= pooled.greedy_makespan
    assert sampled.schedule.makespan <= sampled.greedy_makespan
    assert sampled.greedy_makespan == dispatcher.greedy(instance).makespan


def test_solve_reports_the_agent_schedule(run: Path) -> None:
    dispatcher = load_dispatcher(run)
    solution = solve(shipped_instance("ta02"), f"agent:{run}", sample_s=0.3, dispatcher=dispatcher)
    data = solution.to_json()
    assert data["decoding"] == "sampled"
    assert data["samples"] >= 0  # none may finish in 0.3 s on a busy machine: greedy stands
    assert data["makespan"] <= data["greedy_makespan"]
    online = solve(
        shipped_instance("ta02"), f"agent:{run}", breakdown_seed=3, dispatcher=dispatcher
    ).to_json()
    assert online["decoding"] == "greedy"
    assert online["breakdown_seed"] == 3
    assert online["downtime"]
    with pytest.raises(ConfigError, match="no dispatcher was loaded"):
        solve(shipped_instance("ta02"), f"agent:{run}")


def cli(capfd: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["jobshop", "solve", *argv])
    out, err = capfd.readouterr()
    return code, out, err


def test_cli_solves_with_the_agent(capfd: pytest.CaptureFixture[str], run: Path) -> None:
    code, out, _ = cli(capfd, "ta01", "--method", f"agent:{run}", "--json")
    assert code == 0
    data: dict[str, Any] = json.loads(out)
    assert data["method"] == f"agent:{run}"
    assert data["optimum"] == 1231
    assert len(data["operations"]) == 225
    code, out, _ = cli(capfd, "ta01", "--method", f"agent:{run}", "--sample-s", "0.2")
    assert code == 0
    assert out.splitlines()[1].startswith("  dispatcher: best of ")
    code, out, _ = cli(capfd, "ft06", "--method", f"agent:{run}", "--breakdowns", "2")
    assert code == 0
    assert out.splitlines()[1] == "  dispatcher: greedy, online"


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--sample-s", "1", "--breakdowns", "2"], "sampling needs a static instance"),
        (["--sample-s", "-1"], "--sample-s must be 0 or more seconds, got -1.0"),
    ],
)
def test_cli_bad_sampling(
    capfd: pytest.CaptureFixture[str], run: Path, extra: list[str], message: str
) -> None:
    code, _, err = cli(capfd, "ft06", "--method", f"agent:{run}", *extra)
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert message in err


def test_cli_refuses_a_run_that_is_no_dispatcher(
    capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    other = fleetmind.train(
        "CartPole-v1", algo="ppo", steps=256, envs=1, run_dir=tmp_path / "cp", progress=False
    )
    code, _, err = cli(capfd, "ft06", "--method", f"agent:{other.run_dir}")
    assert code == 2
    assert len(err.strip().splitlines()) == 1
    assert "was trained on CartPole-v1, not a job-shop dispatcher" in err
    code, _, err = cli(capfd, "ft06", "--method", "agent:")
    assert code == 2
    assert "name the run directory" in err
    code, _, err = cli(capfd, "ft06", "--method", "spt", "--sample-s", "1")
    assert code == 2
    assert "--sample-s applies to agent:RUN, not to spt" in err
    code, _, err = cli(capfd, "ft06", "--method", f"agent:{tmp_path / 'missing'}")
    assert code == 2
    assert "holds no checkpoints" in err
    assert len(err.strip().splitlines()) == 1


def test_sampling_temperature_must_be_positive(run: Path) -> None:
    with pytest.raises(ConfigError, match="positive budget, batch and temperature"):
        load_dispatcher(run).sample(shipped_instance("ft06"), 0.01, temperature=0)
    with pytest.raises(ConfigError, match="at least one worker, got 0"):
        load_dispatcher(run).sample(shipped_instance("ft06"), 0.01, workers=0)


def test_sampling_a_shop_without_choices_returns_its_one_schedule(run: Path) -> None:
    import numpy as np

    from fleetmind.envs.scenarios.jobshop.instance import JobShopInstance

    lone = JobShopInstance(np.array([[0, 1]]), np.array([[3, 4]]), name="lone")
    sampled = load_dispatcher(run).sample(lone, 0.05)
    assert sampled.samples == 0
    assert sampled.schedule.makespan == 7
