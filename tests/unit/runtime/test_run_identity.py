"""Which run a run directory holds, and a resumed run's metrics.jsonl."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fleetmind.algos.ppo.config import PPOConfig
from fleetmind.core.errors import RunDirError
from fleetmind.runtime.config import TrainConfig
from fleetmind.runtime.local import prepare_restart
from fleetmind.runtime.run_dir import METRICS, RunDir
from fleetmind.runtime.run_identity import check_same_run, differences, run_id

SAVED = {
    "env_id": "CartPole-v1", "algo": "ppo", "seed": 1, "steps": 1000, "run_dir": "/data/a",
    "target_return": None, "ppo": {"lr": 0.0003, "hidden": [64, 64]},
    "distributed": {"mode": "sync", "sync_timeout_s": 10.0},
}  # fmt: skip


def test_what_may_change_on_resume_does_not_tell_runs_apart() -> None:
    same = {
        **SAVED, "steps": 9000, "run_dir": "/data/b", "target_return": 475.0,
        "ppo": {"lr": 0.0003, "hidden": (64, 64)},  # a tuple before it went through JSON
        "distributed": {"mode": "sync", "sync_timeout_s": 2.0}, "added_later": 1,
    }  # fmt: skip
    assert differences(SAVED, same) == []
    check_same_run(SAVED, same, Path("/data/a"))


def test_another_run_is_named_with_what_differs() -> None:
    other = {**SAVED, "seed": 2, "ppo": {"lr": 0.001, "hidden": [64, 64]}}
    assert run_id(other) != run_id(SAVED)
    with pytest.raises(RunDirError) as info:
        check_same_run(SAVED, other, Path("/data/a"))
    message = str(info.value)
    assert f"holds another run (CartPole-v1 ppo seed 1, id {run_id(SAVED)})" in message
    assert f"than this one (CartPole-v1 ppo seed 2, id {run_id(other)})" in message
    assert "ppo.lr (0.0003 there, 0.001 here), seed (1 there, 2 here) differ" in message
    mode = {**SAVED, "distributed": {"mode": "async"}}
    assert differences(SAVED, mode) == ["distributed.mode ('sync' there, 'async' here)"]


def test_a_directory_is_started_resumed_or_refused(tmp_path: Path) -> None:
    run = tmp_path / "run"

    def prepare(env_id: str = "CartPole-v1", steps: int = 64) -> dict[str, object] | None:
        config = TrainConfig(env_id=env_id, steps=steps, envs=2, run_dir=run)
        return prepare_restart(config, PPOConfig(rollout_steps=16))[-1]

    assert prepare() is None  # absent: a new run
    assert json.loads((run / "config.json").read_text())["steps"] == 64
    assert prepare(steps=128) is None  # the same run, no checkpoint yet: started again
    assert json.loads((run / "config.json").read_text())["steps"] == 128
    before = (run / "config.json").read_bytes()
    with pytest.raises(RunDirError, match=r"env_id \('CartPole-v1' there, 'Acrobot-v1' here\)"):
        prepare("Acrobot-v1")
    assert (run / "config.json").read_bytes() == before


def test_reports_past_the_resumed_step_and_a_torn_line_are_dropped(tmp_path: Path) -> None:
    run_dir = RunDir(tmp_path)
    rows = [{"env_steps": s} for s in (64, 128, 192, 256)]
    torn = '{"env_steps": 3'
    (tmp_path / METRICS).write_text("".join(json.dumps(r) + "\n" for r in rows) + torn)
    assert run_dir.drop_metrics_after(128) == 3
    kept = [json.loads(line) for line in (tmp_path / METRICS).read_text().splitlines()]
    assert kept == rows[:2]
    assert run_dir.drop_metrics_after(128) == 0
    assert not list(tmp_path.glob(".*.tmp"))
