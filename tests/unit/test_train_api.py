"""``fleetmind.train`` and ``fleetmind train`` build the same plan and refuse the same input.

No process starts here: bad input is refused before anything is created, and the
plans are captured instead of run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import fleetmind
from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.cli.main import main
from fleetmind.core.errors import ConfigError
from fleetmind.runtime.launch.train_plan import ResumePlan, TrainPlan
from fleetmind.runtime.result import TrainResult


def test_an_unknown_keyword_is_named_with_close_matches_and_the_settings() -> None:
    with pytest.raises(ConfigError) as info:
        fleetmind.train("CartPole-v1", actorz=2)
    message = str(info.value)
    assert "unknown config key train.actorz; did you mean actors?" in message
    for setting in ("steps", "run_dir", "actors", "learners", "mode", "max_policy_lag"):
        assert setting in message


def test_an_unknown_resume_keyword_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"resume\.stepz; did you mean steps\?"):
        fleetmind.resume(tmp_path, stepz=10)


# Each case: the keywords, the equivalent flags, and the CLI's message (which the API
# gives word for word when the check is the same; ``None``: only ``words`` must appear).
BAD_INPUT = [
    ({"actors": -1}, ["--actors", "-1"], "--actors must be >= 0, got -1"),
    ({"actors": 2, "learners": 0}, ["--actors", "2", "--learners", "0"], "--learners must be >= 1"),
    ({"learners": 2}, ["--learners", "2"], "--learners 2 needs at least 2 actors"),
    ({"actors": 2, "mode": "async"}, ["--actors", "2", "--mode", "async"], "--algo impala"),
    ({"actors": 1, "algo": "impala"}, ["--actors", "1", "--algo", "impala"], "--mode async"),
    (
        {"actors": 2, "mode": "async", "algo": "mappo"},
        ["--actors", "2", "--mode", "async", "--algo", "mappo"],
        "--algo mappo trains on-policy: use --mode sync, or --algo team-impala (V-trace)",
    ),
    (
        {"actors": 2, "algo": "team-impala"},
        ["--actors", "2", "--algo", "team-impala"],
        "--algo team-impala trains with --mode async",
    ),
    ({"actors": 1, "algo": "dqn"}, ["--actors", "1", "--algo", "dqn"], "cannot train with actors"),
    (
        {"actors": 2, "learners": 2, "algo": "dqn"},
        ["--actors", "2", "--learners", "2", "--algo", "dqn"],
        "--learners > 1 shares PPO",
    ),
    ({"actors": 1, "sync_timeout_s": 0}, ["--actors", "1", "--sync-timeout-s", "0"], "positive"),
    (
        {"actors": 1, "actor_timeout_s": float("nan")},
        ["--actors", "1", "--actor-timeout-s", "nan"],
        "--actor-timeout-s must be positive",
    ),
    (
        {"mode": "async", "algo": "impala"},
        ["--mode", "async", "--algo", "impala"],
        "--mode async needs actor processes: add --actors N",
    ),
]


@pytest.mark.parametrize(("kwargs", "flags", "words"), BAD_INPUT)
def test_bad_values_get_the_error_the_cli_gives(
    kwargs: dict[str, Any],
    flags: list[str],
    words: str,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    run_dir = tmp_path / "run"
    with pytest.raises(ConfigError) as info:
        fleetmind.train("CartPole-v1", run_dir=run_dir, **kwargs)
    assert words in str(info.value)
    assert main(["train", "CartPole-v1", "--run-dir", str(run_dir), *flags]) == 2
    assert capsys.readouterr().err.strip() == f"fleetmind train: error: {info.value}"
    assert not run_dir.exists()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"mode": "fast"}, "train.mode must be one of ['sync', 'async'], got 'fast'"),
        ({"steps": "many"}, "train.steps"),
        ({"algo": "ppoo"}, "Did you mean: ppo"),
        ({"algo_config": {"rollout_step": 16}}, "ppo.rollout_step; did you mean rollout_steps?"),
        ({"algo": "impala", "algo_config": PPOConfig()}, "must be ImpalaConfig(...) or a mapping"),
    ],
)
def test_values_of_the_wrong_kind_are_named(
    kwargs: dict[str, Any], words: str, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError) as info:
        fleetmind.train("CartPole-v1", run_dir=tmp_path / "run", **kwargs)
    assert words in str(info.value)
    assert not (tmp_path / "run").exists()


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> list[TrainPlan | ResumePlan]:
    """The plans that ``run`` would have run, in order."""
    plans: list[TrainPlan | ResumePlan] = []
    done = TrainResult("r", False, None, None, 0, 0.0, 0, None, False)

    def record(plan: TrainPlan | ResumePlan) -> TrainResult:
        plans.append(plan)
        return done

    monkeypatch.setattr(TrainPlan, "run", record)
    monkeypatch.setattr(ResumePlan, "run", record)
    return plans


@pytest.mark.parametrize(
    ("flags", "kwargs"),
    [
        (["--steps", "5000", "--seed", "3"], {"steps": 5000, "seed": 3}),
        (
            ["--actors", "2", "--envs", "8", "--ppo.rollout-steps", "16", "--force"],
            {"actors": 2, "envs": 8, "algo_config": {"rollout_steps": 16}, "force": True},
        ),
        (
            ["--actors", "4", "--learners", "2", "--mode", "async", "--algo", "impala",
             "--max-policy-lag", "3", "--queue-chunks", "8", "--no-progress"],
            {"actors": 4, "learners": 2, "mode": "async", "algo": "impala",
             "max_policy_lag": 3, "queue_chunks": 8, "progress": False},
        ),
    ],
)  # fmt: skip
def test_cli_and_api_build_the_same_plan(
    flags: list[str],
    kwargs: dict[str, Any],
    tmp_path: Path,
    captured: list[TrainPlan | ResumePlan],
) -> None:
    run_dir = tmp_path / "run"
    assert main(["train", "CartPole-v1", "--run-dir", str(run_dir), *flags]) == 0
    fleetmind.train("CartPole-v1", run_dir=run_dir, **kwargs)
    cli, api = captured
    assert isinstance(api, TrainPlan)
    assert cli == api
    assert api.dist.actors == kwargs.get("actors", 0)


def test_cli_and_api_resume_the_same_way(
    tmp_path: Path, captured: list[TrainPlan | ResumePlan]
) -> None:
    flags = ["--steps", "9000", "--actors", "3", "--sync-timeout-s", "2.5"]
    assert main(["train", "--resume", str(tmp_path), *flags]) == 0
    fleetmind.resume(tmp_path, steps=9000, actors=3, sync_timeout_s=2.5)
    cli, api = captured
    assert cli == api == ResumePlan(tmp_path, {"steps": 9000}, {"actors": 3, "sync_timeout_s": 2.5})


def test_resume_keeps_a_distributed_run_distributed(tmp_path: Path) -> None:
    from fleetmind.runtime.run_dir import RunDir

    run_dir = RunDir.create(tmp_path / "run", force=False)
    run_dir.write_json("config.json", {"distributed": {"actors": 2, "learners": 2}})
    assert ResumePlan(run_dir.path).dist().actors == 2
    assert ResumePlan(run_dir.path, dist_overrides={"actors": 0, "learners": 1}).dist().actors == 0
    with pytest.raises(ConfigError, match="needs at least 2 actors"):
        ResumePlan(run_dir.path, dist_overrides={"actors": 1}).dist()


def test_resume_checks_the_saved_settings_with_the_overrides(tmp_path: Path) -> None:
    from fleetmind.runtime.run_dir import RunDir

    run_dir = RunDir.create(tmp_path / "run", force=False)
    run_dir.write_json("config.json", {"distributed": {"actors": 4}})
    assert ResumePlan(run_dir.path, dist_overrides={"learners": 2}).dist().learners == 2
