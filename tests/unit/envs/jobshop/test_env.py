"""The dispatching env: Gymnasium's checks, masks, any size, breakdowns and maintenance."""

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from fleetmind.envs.registry import lookup_baselines, make_vector_env
from fleetmind.envs.scenarios.jobshop.catalog import jobshop_env_ids, make_jobshop_env
from fleetmind.envs.scenarios.jobshop.env import JOB_FEATURES, MACHINE_FEATURES
from fleetmind.envs.scenarios.jobshop.rules import dispatch_rule, lookup_rule, rule_choice
from fleetmind.envs.scenarios.jobshop.schedule import check_schedule


@pytest.mark.parametrize("env_id", ["fleetmind/jobshop-6x6", "fleetmind/jobshop-10x10-breakdowns"])
def test_passes_gymnasium_checks(env_id: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # the checker's advice on bounds
        check_env(make_jobshop_env(env_id), skip_render_check=True)


def run(env_id: str, seed: int, choose: str = "mwkr", **overrides: object) -> dict[str, object]:
    env = make_jobshop_env(env_id, overrides)
    obs, info = env.reset(seed=seed)
    rule, total, done = lookup_rule(choose), 0.0, False
    while not done:
        assert env.shop is not None
        mask = info["action_mask"]
        assert np.array_equal(mask, obs["action_mask"])
        assert mask.any()
        assert np.array_equal(mask[: env.num_jobs], obs["jobs"][:, 0])
        obs, reward, done, truncated, info = env.step(rule_choice(env.shop, rule))
        total += reward
        assert not truncated
    assert env.shop is not None
    check_schedule(env.shop.instance, env.shop.schedule())
    return {"return": total, "bound": env.shop.instance.lower_bound(), **info}


def test_the_return_is_minus_makespan_over_the_bound_and_matches_the_rule() -> None:
    out = run("fleetmind/jobshop-6x6", seed=4)
    assert out["return"] == pytest.approx(-out["makespan"] / out["bound"])
    env = make_jobshop_env("fleetmind/jobshop-6x6")
    env.reset(seed=4)
    assert env.shop is not None
    assert out["makespan"] == dispatch_rule(env.shop.instance, "mwkr").makespan


@pytest.mark.parametrize(("jobs", "machines"), [(3, 2), (8, 5), (20, 4)])
def test_features_keep_their_width_at_any_size(jobs: int, machines: int) -> None:
    env = make_jobshop_env("fleetmind/jobshop-6x6", {"jobs": jobs, "machines": machines})
    obs, _ = env.reset(seed=0)
    assert obs["jobs"].shape == (jobs, JOB_FEATURES)
    assert obs["machines"].shape == (machines, MACHINE_FEATURES)
    assert env.action_space.n == jobs + machines


def test_an_invalid_action_becomes_the_nearest_valid_one() -> None:
    env = make_jobshop_env("fleetmind/jobshop-6x6")
    _, info = env.reset(seed=1)
    valid = np.flatnonzero(info["action_mask"])
    invalid = next(a for a in range(env.action_space.n) if a not in valid)
    _, _, _, _, after = env.step(invalid)
    assert after["invalid_action"] is True
    assert not info["action_mask"][env.num_jobs :].any()  # no maintenance without breakdowns


def test_breakdowns_abort_work_and_maintenance_renews_a_machine() -> None:
    env_id = "fleetmind/jobshop-10x10-breakdowns"
    out = run(env_id, seed=2, mtbf=150.0, mttr=30.0)
    assert out["aborted_operations"] > 0
    env = make_jobshop_env(env_id)
    _, info = env.reset(seed=2)
    machine = int(np.flatnonzero(info["action_mask"][env.num_jobs :])[0])
    env.step(env.num_jobs + machine)
    assert env.shop is not None
    downtime = env.shop.schedule().downtime
    assert [(d.machine, d.start, d.kind) for d in downtime] == [(machine, 0, "maintenance")]
    assert env.shop.lives[machine].renewed_at == downtime[0].end


def test_registry_builds_the_flat_vector_form_and_runs_baselines() -> None:
    assert "fleetmind/jobshop-15x15-breakdowns" in jobshop_env_ids()
    envs = make_vector_env("fleetmind/jobshop-6x6", 2)
    obs, _ = envs.reset(seed=0)
    assert obs.shape == (2, 6 * JOB_FEATURES + 6 * MACHINE_FEATURES + 12)
    for _ in range(40):
        obs, *_ = envs.step(envs.action_space.sample())
    envs.close()
    result = lookup_baselines("fleetmind/jobshop-6x6").run_policy(
        "fleetmind/jobshop-6x6", "spt", episodes=2, seed=0
    )
    assert len(result["episodes"]) == 2
    assert result["gap_to_lower_bound"] >= 0


def test_a_baseline_run_of_no_episodes_is_refused() -> None:
    from fleetmind.core.errors import ConfigError

    with pytest.raises(ConfigError, match="episodes=0 must be at least 1"):
        lookup_baselines("fleetmind/jobshop-6x6").run_policy("fleetmind/jobshop-6x6", "spt", 0)
